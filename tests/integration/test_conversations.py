"""Conversations, end to end with two ingest replicas and no affinity between them.

A customer's new message on a conversation with an open inquiry (the same SMS
number, the same social thread, the same chat) joins that inquiry and reaches
the agent handling it on the agent's offer stream (WatchOffers, status
MESSAGE) instead of becoming a new task; with nothing open it becomes a new
inquiry that goes to the last agent. Every message alternates between the
two ingest processes, as a load balancer without affinity would send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from omniroute.embedded import Broker
from omniroute.ports import free_port
from omniroute.v1 import agent_state_pb2, inquiry_pb2
from tests.support.processes import ServiceProcess
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

SMS, SOCIAL, CHAT = inquiry_pb2.CHANNEL_SMS, inquiry_pb2.CHANNEL_SOCIAL, inquiry_pb2.CHANNEL_CHAT


@pytest.fixture(scope="module")
def system(broker: Broker) -> Iterator[System]:
    for started in running(System(broker), "agent-state", "router", "ingest"):
        # A second ingest replica on its own port, sharing everything else.
        port = free_port()
        second = ServiceProcess("omniroute_ingest", {**started.env, "INGEST_PORT": str(port)})
        started.processes["ingest-2"] = second.start()
        started.ports["ingest-2"] = port
        health = f"http://127.0.0.1:{port}/healthz"
        second.wait_until(functools.partial(_ready, health))
        yield started


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def status_of(url: str, body: dict[str, Any]) -> int:
    """The HTTP status of a JSON POST (errors included)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def replicas(system: System) -> tuple[str, str]:
    return system.ingest_url, f"http://127.0.0.1:{system.ports['ingest-2']}"


def send(url: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> Any:
    data = urllib.parse.urlencode(form).encode() if form is not None else json.dumps(body).encode()
    headers = {} if form is not None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read()) if form is None else response.headers["X-Inquiry-Id"]


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    async with read_assignments(system) as tail:
        yield tail


@contextlib.asynccontextmanager
async def watching(desk: Desk, agent_id: str) -> AsyncIterator[list[agent_state_pb2.Offer]]:
    """Everything the agent's desk is told on WatchOffers, as it arrives."""
    seen: list[agent_state_pb2.Offer] = []
    stream = desk.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))

    async def read() -> None:
        async for offer in stream:
            seen.append(offer)

    task = asyncio.create_task(read())
    try:
        yield seen
    finally:
        stream.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def messages(seen: list[agent_state_pb2.Offer]) -> list[agent_state_pb2.Offer]:
    return [o for o in seen if o.status == agent_state_pb2.Offer.STATUS_MESSAGE]


async def test_an_sms_on_an_open_inquiry_joins_it_and_reaches_its_agent(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    a, b = replicas(system)
    ws = new_workspace()
    agent_id = f"{ws}-ann"
    await desk.login(make_agent(ws, agent_id, {}, {SMS: 2}))
    number = "+1555" + str(uuid.uuid4().int)[:7]

    def sms(url: str, text: str) -> str:
        sid = "SM" + uuid.uuid4().hex[:12]
        return str(send(f"{url}/v1/sms/{ws}", form={"From": number, "Body": text, "MessageSid": sid}))  # fmt: skip

    async with watching(desk, agent_id) as seen:
        first = sms(a, "My parcel never arrived")
        await assignments.wait_for(lambda x: x.inquiry_id == first)
        await desk.accept(agent_id, first)
        second = sms(b, "The tracking number is 123")  # the other replica

        async def delivered() -> agent_state_pb2.Offer:
            found = messages(seen)
            assert len(found) == 1, found
            return found[0]

        message = await eventually(delivered)
        assert message.message.inquiry_id == first
        assert (message.message.message.id, message.message.message.body) == (
            second,
            "The tracking number is 123",
        )
        # It joined: no second task for it, the agent holds one.
        assert not [x for x in assignments.records if x.inquiry_id == second]
        assert [r.inquiry_id for r in (await desk.agent(agent_id)).reservations] == [first]

        # Resolved: the next message opens a new inquiry, offered to the same agent.
        await desk.complete(agent_id, first)
        third = sms(b, "Thanks! One more thing")
        offer = await assignments.wait_for(lambda x: x.inquiry_id == third)
        assert offer.agent_id == agent_id and third != first


async def test_a_chat_works_across_replicas_and_its_messages_reach_the_agent(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    a, b = replicas(system)
    ws = new_workspace()
    agent_id = f"{ws}-bo"
    await desk.login(make_agent(ws, agent_id, {}, {CHAT: 1}))
    async with watching(desk, agent_id) as seen:
        # Started on one replica without a message; the first message reaches the other
        # at once: its conversation state comes from the topic, not from memory.
        started = send(f"{a}/v1/chat/{ws}/conversations", {"customer": {"id": "c-1"}})
        base = f"/v1/chat/{ws}/conversations/{started['conversation_id']}"
        first = send(f"{b}{base}/messages", {"text": "Hello, my card was charged twice"})
        assert first["published"] is True
        inquiry_id = started["inquiry_id"]
        await assignments.wait_for(lambda x: x.inquiry_id == inquiry_id)
        await desk.accept(agent_id, inquiry_id)
        send(f"{a}{base}/messages", {"text": "Order 5521"})
        send(f"{b}{base}/messages", {"text": "Are you there?"})

        async def delivered() -> list[str]:
            texts = [m.message.message.body for m in messages(seen)]
            assert texts == ["Order 5521", "Are you there?"]
            return texts

        await eventually(delivered)
        assert all(m.message.inquiry_id == inquiry_id for m in messages(seen))
        assert [x.inquiry_id for x in assignments.records if x.workspace == ws] == [inquiry_id]
        # Ended on the first replica: the second knows it too.
        send(f"{a}{base}/end", {})

        async def ended() -> None:
            assert status_of(f"{b}{base}/messages", {"text": "still there?"}) == 409

        await eventually(ended)


async def test_a_social_thread_joins_its_open_inquiry_from_either_replica(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    a, b = replicas(system)
    ws = new_workspace()
    agent_id = f"{ws}-cy"
    sender = "u-" + uuid.uuid4().hex[:8]
    waiting = 'omniroute_router_conversation_messages_total{delivery="waiting"} '
    joined_before = metric_value(system.router_metrics_url(), waiting) or 0

    def direct_message(url: str, text: str) -> str:
        event = {"sender": {"id": sender}, "message": {"mid": uuid.uuid4().hex, "text": text}}
        note = {"object": "page", "entry": [{"messaging": [event]}]}
        (accepted,) = send(f"{url}/v1/social/{ws}/webhook", note)["accepted"]
        return str(accepted)

    # Nobody is logged in yet: the second message joins the waiting inquiry.
    first = direct_message(b, "Where is my order?")
    second = direct_message(a, "It was due on Monday")

    async def joined() -> None:
        assert (metric_value(system.router_metrics_url(), waiting) or 0) > joined_before

    await eventually(joined)
    await desk.login(make_agent(ws, agent_id, {}, {SOCIAL: 1}))
    async with watching(desk, agent_id) as seen:
        offer = await assignments.wait_for(lambda x: x.inquiry_id == first)
        # One task, whose content holds the whole conversation so far.
        assert offer.agent_id == agent_id
        assert offer.inquiry.body == "Where is my order?\n\nIt was due on Monday"
        assert not [x for x in assignments.records if x.inquiry_id == second]
        await desk.accept(agent_id, first)
        third = direct_message(b, "Hello?")

        async def delivered() -> None:
            assert [m.message.message.id for m in messages(seen)] == [third]

        await eventually(delivered)
