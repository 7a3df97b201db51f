"""agent-state over real gRPC and the real broker: reservations, offers and outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from tests.support.agent_state import (
    Running,
    available_agent,
    load_of,
    published_fixture,
    reserve,
    service_fixture,
)
from tests.support.kafka import TopicTail
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

VOICE, CHAT, EMAIL = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
AVAILABLE, AWAY = agent_pb2.AGENT_STATUS_AVAILABLE, agent_pb2.AGENT_STATUS_AWAY
TaskEvent = task_pb2.TaskEvent


# agent-state with offers that expire after one second.
service = service_fixture(OFFER_TTL_S="1", OFFER_TTL_BY_CHANNEL="{}")
task_events = published_fixture("topic_task_events", task_pb2.TaskEvent)
agent_events = published_fixture("topic_agent_events", agent_pb2.AgentEvent)


async def test_health_and_reflection(service: Running) -> None:
    health = health_pb2_grpc.HealthStub(service.channel)
    for name in ("", "omniroute.v1.AgentState"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(service.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in reflect.ServerReflectionInfo(iter([request])):
        names = {s.name for s in answer.list_services_response.service}
        assert {"omniroute.v1.AgentState", "grpc.health.v1.Health"} <= names


async def test_racing_reservations_for_the_last_slot_have_one_winner(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 1})
    calls = [service.stub.ReserveAgent(reserve(ws, "ann", f"inq-{i}")) for i in range(20)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    won = [r for r in results if isinstance(r, agent_state_pb2.ReserveAgentResponse)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 19
    assert {e.code() for e in lost} == {grpc.StatusCode.FAILED_PRECONDITION}
    agent = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
    assert load_of(agent, CHAT) == 1
    assert [r.inquiry_id for r in agent.reservations] == [won[0].reservation.inquiry_id]


async def test_an_inquiry_is_never_reserved_twice(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "bea", {CHAT: 3})
    await available_agent(service.stub, ws, "cal", {CHAT: 3})
    first = await service.stub.ReserveAgent(reserve(ws, "bea", "inq-1"))
    again = await service.stub.ReserveAgent(reserve(ws, "cal", "inq-1"))
    assert not first.already_reserved and again.already_reserved
    assert again.agent.id == "bea"
    assert again.reservation.reservation_id == first.reservation.reservation_id
    cal = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="cal"))
    assert load_of(cal, CHAT) == 0 and not cal.reservations


async def test_accept_decline_complete_keep_load_exact_and_are_published(
    service: Running,
    task_events: TopicTail[task_pb2.TaskEvent],
    agent_events: TopicTail[agent_pb2.AgentEvent],
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "dan", {CHAT: 2})
    await service.stub.ReserveAgent(reserve(ws, "dan", "inq-a"))
    await service.stub.ReserveAgent(reserve(ws, "dan", "inq-b"))
    task = agent_state_pb2.TaskRequest
    agent = await service.stub.AcceptTask(task(agent_id="dan", inquiry_id="inq-a"))
    assert load_of(agent, CHAT) == 2
    agent = await service.stub.DeclineTask(task(agent_id="dan", inquiry_id="inq-b", reason="busy"))
    assert load_of(agent, CHAT) == 1
    follow_up = task_pb2.FollowUp(note="call back")
    follow_up.due_at.FromSeconds(2_000_000_000)
    agent = await service.stub.CompleteTask(
        agent_state_pb2.CompleteTaskRequest(
            agent_id="dan",
            inquiry_id="inq-a",
            resolution=task_pb2.RESOLUTION_FOLLOW_UP,
            follow_up=follow_up,
        )
    )
    assert load_of(agent, CHAT) == 0 and not agent.reservations
    assert agent.idle_since.seconds > 0

    mine = [TaskEvent.TYPE_OFFERED, TaskEvent.TYPE_ACCEPTED]
    await task_events.wait_count(lambda e: e.workspace == ws and e.type in mine, 3)
    declined = await task_events.wait_for(lambda e: e.type == TaskEvent.TYPE_DECLINED)
    assert (declined.inquiry_id, declined.agent_id, declined.reason) == ("inq-b", "dan", "busy")
    done = await task_events.wait_for(lambda e: e.type == TaskEvent.TYPE_COMPLETED)
    assert done.resolution == task_pb2.RESOLUTION_FOLLOW_UP
    assert done.follow_up.note == "call back" and done.follow_up.due_at.seconds == 2_000_000_000
    # Every change is an AgentEvent with the full record and a rising version.
    events = await agent_events.wait_count(lambda e: e.agent.id == "dan", 7)
    versions = [e.agent.version for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert load_of(events[-1].agent, CHAT) == 0


async def test_an_expired_offer_comes_back_for_rerouting(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "eve", {VOICE: 1})
    await available_agent(service.stub, ws, "fay", {VOICE: 1})
    await service.stub.ReserveAgent(reserve(ws, "eve", "call-1", VOICE))
    timeout = await task_events.wait_for(
        lambda e: e.inquiry_id == "call-1" and e.type == TaskEvent.TYPE_OFFER_TIMEOUT
    )
    assert timeout.agent_id == "eve"
    eve = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="eve"))
    assert load_of(eve, VOICE) == 0 and not eve.reservations
    assert (eve.status, eve.away_reason) == (AWAY, "missed_offer")
    # The router can now offer it to someone else.
    again = await service.stub.ReserveAgent(reserve(ws, "fay", "call-1", VOICE))
    assert not again.already_reserved and again.agent.id == "fay"


async def test_watch_offers_streams_the_offers_made_to_one_agent(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "gus", {EMAIL: 5})
    stream = service.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id="gus"))
    received: asyncio.Queue[agent_state_pb2.Offer] = asyncio.Queue()

    async def read() -> None:
        async for offer in stream:
            received.put_nowait(offer)

    reader = asyncio.create_task(read())
    try:
        # The stream is registered once the server has its first call in hand;
        # reserve until the offer shows up rather than guessing when that is.
        reservation = await service.stub.ReserveAgent(reserve(ws, "gus", "mail-1", EMAIL))
        offer = await asyncio.wait_for(received.get(), timeout=10)
        assert offer.reservation.reservation_id == reservation.reservation.reservation_id
        assert offer.assignment.inquiry_id == "mail-1"
        assert offer.assignment.reservation_id == reservation.reservation.reservation_id
    finally:
        stream.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_concurrent_calls_keep_every_load_exact(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    agents = ["kim", "lou", "max"]
    for agent_id in agents:
        await available_agent(service.stub, ws, agent_id, {CHAT: 3})
    # 30 inquiries race for 9 slots, each tried on every agent at once.
    inquiries = [f"chat-{n}" for n in range(30)]
    tries = [
        service.stub.ReserveAgent(reserve(ws, agent_id, inquiry))
        for inquiry in inquiries
        for agent_id in agents
    ]
    results = await asyncio.gather(*tries, return_exceptions=True)
    made = {
        r.reservation.inquiry_id: r.reservation.agent_id
        for r in results
        if isinstance(r, agent_state_pb2.ReserveAgentResponse)
    }
    assert len(made) == 9  # every slot filled, no inquiry held twice
    listing = await service.stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
    assert [load_of(a, CHAT) for a in listing.agents] == [3, 3, 3]

    # Accept, decline and complete, all at once, with repeated calls mixed in.
    task = agent_state_pb2.TaskRequest
    held = sorted(made.items())

    def accept(pairs: list[tuple[str, str]]) -> list[Any]:
        return [service.stub.AcceptTask(task(agent_id=a, inquiry_id=i)) for i, a in pairs]

    def complete(pairs: list[tuple[str, str]]) -> list[Any]:
        return [
            service.stub.CompleteTask(agent_state_pb2.CompleteTaskRequest(agent_id=a, inquiry_id=i))
            for i, a in pairs
        ]

    declines = [service.stub.DeclineTask(task(agent_id=a, inquiry_id=i)) for i, a in held[6:]]
    await asyncio.gather(*accept(held[:6]), *accept(held[:2]), *declines, return_exceptions=True)
    outcomes = await asyncio.gather(
        *complete(held[:6]), *complete(held[:3]), return_exceptions=True
    )
    # A repeated completion is a retry: answered OK, and it releases nothing more.
    assert all(isinstance(o, agent_pb2.Agent) for o in outcomes), outcomes
    listing = await service.stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
    assert all(load_of(a, CHAT) == 0 and not a.reservations for a in listing.agents)
    done = await task_events.wait_count(
        lambda e: e.workspace == ws and e.type == TaskEvent.TYPE_COMPLETED, 6
    )
    assert sorted(e.inquiry_id for e in done) == [i for i, _ in held[:6]]


async def test_a_refused_reservation_carries_the_agents_current_record(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "full", {CHAT: 1})
    await service.stub.ReserveAgent(reserve(ws, "full", "first"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ReserveAgent(reserve(ws, "full", "second"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    metadata = refused.value.trailing_metadata() or ()
    records = [v for k, v in metadata if k == "omniroute-agent-bin"]
    assert len(records) == 1
    record = agent_pb2.Agent.FromString(records[0])
    assert (record.id, load_of(record, CHAT)) == ("full", 1)
