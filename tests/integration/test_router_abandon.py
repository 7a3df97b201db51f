"""Abandons: an open offer is withdrawn at the agent's desk; an early abandon closes its inquiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer

from omniroute.codec import encode
from omniroute.embedded import EmbeddedBroker
from omniroute.v1 import agent_state_pb2, task_pb2
from tests.support.system import (
    CHAT,
    Assignments,
    Desk,
    System,
    eventually,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    read_assignments,
    running,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(broker: EmbeddedBroker) -> Iterator[System]:
    yield from running(System(broker), "agent-state", "router", "ingest")


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    async with read_assignments(system) as tail:
        yield tail


async def publish_abandon(system: System, workspace: str, inquiry_id: str) -> None:
    """What a channel (or ingest) publishes when the customer leaves."""
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap, acks="all")
    await producer.start()
    try:
        event = task_pb2.TaskEvent(
            type=task_pb2.TaskEvent.TYPE_ABANDONED,
            inquiry_id=inquiry_id,
            workspace=workspace,
            reason="hung_up",
        )
        await producer.send_and_wait(
            system.topics["TOPIC_TASK_EVENTS"], encode(event), key=workspace.encode()
        )
    finally:
        await producer.stop()


def router_events(system: System, source: str, outcome: str) -> float:
    url = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"
    line = f'omniroute_router_events_total{{input="{source}",outcome="{outcome}"}} '
    return metric_value(url, line) or 0.0


async def test_an_abandon_during_an_open_offer_withdraws_it_at_the_desk(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    agent_id = f"{ws}-agent"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 1}))
    stream = desk.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))
    try:
        inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
        await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
        await publish_abandon(system, ws, inquiry_id)

        async def withdrawn() -> agent_state_pb2.Offer:
            async for offer in stream:
                if offer.status == agent_state_pb2.Offer.STATUS_WITHDRAWN:
                    return offer
            raise AssertionError("the offer stream ended")

        offer = await asyncio.wait_for(withdrawn(), timeout=30)
        assert offer.reservation.inquiry_id == inquiry_id
    finally:
        stream.cancel()

    async def slot_free() -> None:
        agent = await desk.agent(agent_id)
        assert [c.load for c in agent.capacities] == [0]
        assert not agent.reservations

    await eventually(slot_free)


async def test_an_abandon_that_arrives_before_its_inquiry_closes_it(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    agent_id = f"{ws}-agent"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 1}))
    inquiry_id = f"{ws}-early"
    processed = router_events(system, "task-events", "processed")
    await publish_abandon(system, ws, inquiry_id)

    async def abandon_seen() -> None:
        assert router_events(system, "task-events", "processed") > processed

    await eventually(abandon_seen)
    duplicates = router_events(system, "inquiries", "duplicate")
    system.post_inquiry(inquiry_body(ws, "chat", id=inquiry_id))

    async def inquiry_closed() -> None:
        assert router_events(system, "inquiries", "duplicate") > duplicates

    await eventually(inquiry_closed)
    # A later inquiry of the workspace is offered: the agent was free all along.
    later = system.post_inquiry(inquiry_body(ws, "chat"))
    await assignments.wait_for(lambda a: a.inquiry_id == later)
    assert [a.inquiry_id for a in assignments.records if a.workspace == ws] == [later]
