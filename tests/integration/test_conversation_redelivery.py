"""Fault test: a customer message whose delivery failed reaches the agent's desk in the end.

agent-state is paused (SIGSTOP) while a customer writes again on a
conversation whose inquiry an agent holds: the router's `DeliverMessage`
fails, the message is kept with the inquiry's content and tried again on the
next ticks. The router worker is then killed (SIGKILL) with the retry still
pending; agent-state resumes, the router restarts, and the next owner
delivers the message: the agent's desk shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from omniroute.embedded import Broker
from omniroute.v1 import agent_state_pb2, inquiry_pb2
from tests.support.processes import paused
from tests.support.system import (
    Assignments,
    Desk,
    System,
    eventually,
    make_agent,
    metric_value,
    new_workspace,
    read_assignments,
    running,
)

pytestmark = pytest.mark.integration

SMS = inquiry_pb2.CHANNEL_SMS


@pytest.fixture
def system(broker: Broker) -> Iterator[System]:
    # A short agent-state deadline: the delivery made during the pause fails fast.
    yield from running(System(broker, extra_env={"AGENT_STATE_TIMEOUT_S": "1"}))


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    async with read_assignments(system) as tail:
        yield tail


def sms(system: System, ws: str, number: str, text: str) -> str:
    form = {"From": number, "Body": text, "MessageSid": "SM" + uuid.uuid4().hex[:12]}
    request = urllib.request.Request(
        f"{system.ingest_url}/v1/sms/{ws}", data=urllib.parse.urlencode(form).encode()
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return str(response.headers["X-Inquiry-Id"])


def router_metric(system: System, line_prefix: str) -> float:
    return metric_value(system.router_metrics_url(), line_prefix) or 0.0


async def inquiries_committed(system: System) -> None:
    """The router has committed every inquiry published so far (Faust flushes its table
    writes before it commits): a restarted worker reads none of them again."""
    topic = system.topics["TOPIC_INQUIRIES"]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=system.broker.bootstrap,
        group_id=system.env["ROUTER_APP_ID"],
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(system.partitions)]
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            assert (await consumer.committed(tp) or 0) >= ends[tp], tp
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def messages_on(desk: Desk, agent_id: str) -> AsyncIterator[list[str]]:
    """The ids of the customer messages the agent's desk is shown (STATUS_MESSAGE)."""
    seen: list[str] = []
    stream = desk.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))

    async def read() -> None:
        async for offer in stream:
            if offer.status == agent_state_pb2.Offer.STATUS_MESSAGE:
                seen.append(offer.message.message.id)

    task = asyncio.create_task(read())
    try:
        yield seen
    finally:
        stream.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def test_a_message_not_delivered_during_a_pause_reaches_the_desk_after_a_router_kill(
    system: System, assignments: Assignments
) -> None:
    ws = new_workspace()
    agent_id = f"{ws}-ann"
    number = "+1555" + str(uuid.uuid4().int)[:7]
    desk = Desk(system.agent_state_target)
    try:
        await desk.login(make_agent(ws, agent_id, {}, {SMS: 2}))
        first = sms(system, ws, number, "My parcel never arrived")
        await assignments.wait_for(lambda x: x.inquiry_id == first)
        await desk.accept(agent_id, first)

        failed = 'omniroute_router_conversation_messages_total{delivery="failed"}'
        retried = 'omniroute_router_message_redeliveries_total{outcome="failed"}'
        with paused(system.processes["agent-state"].process):
            second = sms(system, ws, number, "The tracking number is 123")

            async def kept_and_retried() -> None:
                assert router_metric(system, failed) >= 1
                assert router_metric(system, retried) >= 1  # a tick tried again
                # Not read again after the kill: only the kept retry can deliver it.
                await inquiries_committed(system)

            await eventually(kept_and_retried, timeout_s=60)
            system.processes["router"].stop(signal.SIGKILL)  # the retry still pending

        async with messages_on(desk, agent_id) as seen:
            system.restart("router")

            async def shown() -> None:
                assert second in seen

            await eventually(shown, timeout_s=60)
        assert seen.count(second) == 1
        # It joined the open inquiry: never a task of its own.
        assert not [x for x in assignments.records if x.inquiry_id == second]
        assert [r.inquiry_id for r in (await desk.agent(agent_id)).reservations] == [first]
        delivered = 'omniroute_router_message_redeliveries_total{outcome="delivered"}'
        assert router_metric(system, delivered) == 1
    finally:
        await desk.close()
