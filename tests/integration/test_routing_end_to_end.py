"""The walking skeleton end to end: HTTP in, routing through Kafka, offers over gRPC.

Real broker, real services as processes, real HTTP and gRPC clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from omniroute.embedded import Broker
from omniroute.v1 import queue_pb2
from tests.support.kafka import TopicTail
from tests.support.system import (
    CHAT,
    VOICE,
    Assignments,
    Desk,
    System,
    eventually,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    running,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(broker: Broker) -> Iterator[System]:
    yield from running(System(broker))


def queue_depth(system: System, workspace: str) -> float | None:
    url = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"
    return metric_value(url, f'omniroute_router_queue_depth{{queue="default",workspace="{workspace}"}}')  # fmt: skip


async def test_an_inquiry_is_offered_to_the_agent_with_the_skill_and_channel(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-voice", {"billing": 5}, {VOICE: 1}))
    await desk.login(make_agent(ws, f"{ws}-tech", {"technical": 5}, {CHAT: 2}))
    await desk.login(make_agent(ws, f"{ws}-billing", {"billing": 3}, {CHAT: 2}))

    body = inquiry_body(ws, "chat", requiredSkills=[{"name": "billing", "minProficiency": 2}])
    inquiry_id = system.post_inquiry(body)
    offer = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert offer.agent_id == f"{ws}-billing"
    assert offer.workspace == ws and offer.attempt == 1 and offer.reservation_id

    await desk.accept(offer.agent_id, inquiry_id)
    held = await desk.agent(offer.agent_id)
    assert [(c.channel, c.load) for c in held.capacities] == [(CHAT, 1)]

    await desk.complete(offer.agent_id, inquiry_id)
    freed = await desk.agent(offer.agent_id)
    assert [(c.channel, c.load) for c in freed.capacities] == [(CHAT, 0)]


async def test_an_inquiry_nobody_fits_waits_until_a_matching_agent_is_available(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-sales", {"sales": 5}, {CHAT: 3}))
    body = inquiry_body(ws, "chat", requiredSkills=[{"name": "legal", "minProficiency": 1}])
    inquiry_id = system.post_inquiry(body)

    async def waiting() -> None:
        assert queue_depth(system, ws) == 1

    await eventually(waiting)
    assert not [a for a in assignments.records if a.inquiry_id == inquiry_id]

    await desk.login(make_agent(ws, f"{ws}-legal", {"legal": 2}, {CHAT: 1}))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert offer.agent_id == f"{ws}-legal"


async def test_an_agent_with_chat_capacity_two_gets_two_chats_and_not_a_third(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    agent_id = f"{ws}-ana"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 2}))
    ids = [system.post_inquiry(inquiry_body(ws, "chat")) for _ in range(3)]

    first = await assignments.wait_for(lambda a: a.inquiry_id == ids[0])
    second = await assignments.wait_for(lambda a: a.inquiry_id == ids[1])
    assert first.agent_id == second.agent_id == agent_id

    async def third_waits() -> None:
        assert queue_depth(system, ws) == 1

    await eventually(third_waits)
    assert not [a for a in assignments.records if a.inquiry_id == ids[2]]
    agent = await desk.agent(agent_id)
    assert [(c.channel, c.capacity, c.load) for c in agent.capacities] == [(CHAT, 2, 2)]

    # A slot frees up: the third chat goes to the agent.
    await desk.accept(agent_id, ids[0])
    await desk.complete(agent_id, ids[0])
    third = await assignments.wait_for(lambda a: a.inquiry_id == ids[2])
    assert third.agent_id == agent_id


async def test_an_offer_carries_the_inquiry_and_the_queue_snapshots_follow_it(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    agent = make_agent(ws, f"{ws}-ana", {"billing": 3}, {CHAT: 1})
    async with TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_QUEUE_SNAPSHOTS"], queue_pb2.QueueSnapshot
    ) as snapshots:
        body = inquiry_body(
            ws, "chat", subject="Charged twice", body="Card charged twice in March."
        )
        inquiry_id = system.post_inquiry({**body, "customer": {"name": "Maria Gomez"}})

        def default_queue(snapshot: queue_pb2.QueueSnapshot) -> queue_pb2.QueueStats | None:
            if snapshot.workspace != ws:
                return None
            return next((q for q in snapshot.queues if q.name == "default"), None)

        def shows(**figures: int) -> Callable[[queue_pb2.QueueSnapshot], bool]:
            def matches(snapshot: queue_pb2.QueueSnapshot) -> bool:
                queue = default_queue(snapshot)
                return queue is not None and all(getattr(queue, k) == v for k, v in figures.items())

            return matches

        waiting = await snapshots.wait_for(shows(waiting=1))
        assert default_queue(waiting).oldest_wait_s >= 0  # type: ignore[union-attr]

        await desk.login(agent)
        offer = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
        assert offer.inquiry.id == inquiry_id and offer.inquiry.workspace == ws
        assert offer.inquiry.subject == "Charged twice"
        assert offer.inquiry.body == "Card charged twice in March."
        assert offer.inquiry.customer.name == "Maria Gomez"
        await snapshots.wait_for(shows(waiting=0, offered=1))

        await desk.accept(agent.id, inquiry_id)
        await snapshots.wait_for(shows(in_progress=1, answered_today=1))
        await desk.complete(agent.id, inquiry_id)
        await snapshots.wait_for(shows(in_progress=0, offered=0, answered_today=1))
