"""agent-state over real gRPC and the real broker: presence, sessions, transfer, queries, errors."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import generate_latest

from omniroute.codec import timestamp
from omniroute.embedded import Broker
from omniroute.kafka import EventProducer
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, queue_pb2, task_pb2
from tests.support.agent_state import (
    Running,
    agent_state_service,
    available_agent,
    eventually,
    load_of,
    published_fixture,
    reserve,
    service_fixture,
)
from tests.support.kafka import TopicTail
from tests.support.system import make_agent, new_workspace

pytestmark = pytest.mark.integration

VOICE, CHAT = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT
OFFLINE, AVAILABLE = agent_pb2.AGENT_STATUS_OFFLINE, agent_pb2.AGENT_STATUS_AVAILABLE
AWAY, WRAP_UP = agent_pb2.AGENT_STATUS_AWAY, agent_pb2.AGENT_STATUS_WRAP_UP
TaskEvent = task_pb2.TaskEvent


# agent-state with a one-second session timeout and a one-second wrap-up after calls.
# Offers last long here, so only sessions and wrap-ups expire during a test.
service = service_fixture(
    OFFER_TTL_S="120", SESSION_TIMEOUT_S="1", WRAP_UP_BY_CHANNEL='{"voice": 1}'
)
task_events = published_fixture("topic_task_events", task_pb2.TaskEvent)


async def get(service: Running, agent_id: str) -> agent_pb2.Agent:
    """GetAgent."""
    return await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id=agent_id))


async def test_status_changes_are_events_with_who_when_and_why(service: Running) -> None:
    ws = new_workspace()
    watch = service.stub.WatchAgents(agent_state_pb2.WatchAgentsRequest(workspace=ws))
    seen: list[agent_pb2.AgentEvent] = []

    async def read() -> None:
        async for event in watch:
            seen.append(event)

    reader = asyncio.create_task(read())
    try:
        # WatchAgents shows changes from when the server registered the stream;
        # make changes until one shows up rather than guessing when that is.
        async def registered() -> bool:
            await available_agent(service.stub, ws, "ann", {CHAT: 3})
            return bool(seen)

        await eventually(registered)
        await service.stub.SetStatus(
            agent_state_pb2.SetStatusRequest(agent_id="ann", status=AWAY, reason="lunch")
        )
        event = await eventually(
            lambda: next((e for e in seen if e.agent.status == AWAY), None), timeout_s=10
        )
        assert event.change == agent_pb2.AgentEvent.CHANGE_STATUS
        assert event.reason == "lunch" and event.agent.away_reason == "lunch"
        assert event.actor  # the caller (its address, as authentication is off here)
        assert event.occurred_at.seconds > 0
    finally:
        watch.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_a_silent_desktop_goes_offline_and_its_offers_come_back(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "bea", {CHAT: 3})
    beat = await service.stub.Heartbeat(agent_state_pb2.HeartbeatRequest(agent_id="bea"))
    assert beat.session_expires_at.seconds > 0
    assert (await get(service, "bea")).session_active
    await service.stub.ReserveAgent(reserve(ws, "bea", "chat-1"))
    # No more heartbeats: the session lapses.
    withdrawn = await task_events.wait_for(
        lambda e: e.inquiry_id == "chat-1" and e.type == TaskEvent.TYPE_WITHDRAWN
    )
    assert (withdrawn.agent_id, withdrawn.reason) == ("bea", "session_timeout")
    bea = await get(service, "bea")
    assert bea.status == OFFLINE and not bea.session_active and load_of(bea, CHAT) == 0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.Heartbeat(agent_state_pb2.HeartbeatRequest(agent_id="bea"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_open_offer_stream_keeps_the_session_alive(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "cal", {CHAT: 3})
    await available_agent(service.stub, ws, "dot", {CHAT: 3})
    stream = service.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id="cal"))

    async def drain() -> None:
        async for _ in stream:
            pass

    reader = asyncio.create_task(drain())
    try:
        await eventually(lambda: is_active(service, "cal"))
        # dot's session starts after cal's and is kept by nothing: once it has
        # lapsed, cal's would have too, were the stream not holding it.
        await service.stub.Heartbeat(agent_state_pb2.HeartbeatRequest(agent_id="dot"))
        await eventually(lambda: is_offline(service, "dot"))
        cal = await get(service, "cal")
        assert cal.status == AVAILABLE and cal.session_active
    finally:
        stream.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # Once the desktop hangs up, the session lapses.
    await eventually(lambda: is_offline(service, "cal"))


async def is_active(service: Running, agent_id: str) -> bool:
    """Whether the agent's desktop session is active."""
    return (await get(service, agent_id)).session_active


async def is_offline(service: Running, agent_id: str) -> bool:
    """Whether the agent is OFFLINE."""
    return (await get(service, agent_id)).status == OFFLINE


async def test_wrap_up_after_a_call_ends_by_itself(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "dan", {VOICE: 1})
    await service.stub.ReserveAgent(reserve(ws, "dan", "call-1", VOICE))
    task = agent_state_pb2.TaskRequest(agent_id="dan", inquiry_id="call-1")
    await service.stub.AcceptTask(task)
    done = await service.stub.CompleteTask(
        agent_state_pb2.CompleteTaskRequest(
            agent_id="dan", inquiry_id="call-1", resolution=task_pb2.RESOLUTION_RESOLVED
        )
    )
    assert done.status == WRAP_UP and done.wrap_up_until.seconds > 0
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await service.stub.ReserveAgent(reserve(ws, "dan", "call-2", VOICE))
    assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def available() -> bool:
        return (await get(service, "dan")).status == AVAILABLE

    await eventually(available)


async def test_transfer_and_escalation_are_published(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "eve", {CHAT: 2})
    await available_agent(service.stub, ws, "fay", {CHAT: 1})
    await service.stub.ReserveAgent(reserve(ws, "eve", "chat-9"))
    await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="eve", inquiry_id="chat-9"))
    moved = await service.stub.TransferTask(
        agent_state_pb2.TransferTaskRequest(
            agent_id="eve", inquiry_id="chat-9", target_agent_id="fay", reason="billing"
        )
    )
    assert load_of(moved.agent, CHAT) == 0 and load_of(moved.target, CHAT) == 1
    assert moved.reservation.accepted and moved.reservation.agent_id == "fay"
    escalation = task_pb2.Escalation(
        target_tier=agent_pb2.TIER_SPECIALIST, target_skill="retention", reason="wants a refund"
    )
    fay = await service.stub.CompleteTask(
        agent_state_pb2.CompleteTaskRequest(
            agent_id="fay",
            inquiry_id="chat-9",
            resolution=task_pb2.RESOLUTION_ESCALATED,
            escalation=escalation,
        )
    )
    assert load_of(fay, CHAT) == 0
    transferred = await task_events.wait_for(lambda e: e.type == TaskEvent.TYPE_TRANSFERRED)
    assert (transferred.agent_id, transferred.target_agent_id) == ("eve", "fay")
    completed = await task_events.wait_for(lambda e: e.type == TaskEvent.TYPE_COMPLETED)
    assert completed.agent_id == "fay"
    assert completed.escalation.target_skill == "retention"
    assert completed.escalation.target_tier == agent_pb2.TIER_SPECIALIST


async def test_a_transfer_to_a_queue_is_checked_against_the_routers_queues(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ida", {CHAT: 1})
    await service.stub.ReserveAgent(reserve(ws, "ida", "chat-7"))
    await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ida", inquiry_id="chat-7"))
    request = agent_state_pb2.TransferTaskRequest(
        agent_id="ida", inquiry_id="chat-7", target_queue="tech", note="the note"
    )
    # No snapshot of the workspace seen yet: agent-state cannot tell, so it refuses (retryable).
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await service.stub.TransferTask(request)
    assert unknown.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "target_queue" in (unknown.value.details() or "")
    # The router publishes the workspace's queues (the real one does it every tick).
    snapshot = queue_pb2.QueueSnapshot(
        workspace=ws,
        taken_at=timestamp(time.time()),
        queues=[queue_pb2.QueueStats(name="billing"), queue_pb2.QueueStats(name="tech")],
    )
    producer = EventProducer(service.settings, "test-router")
    await producer.start()

    async def transferred() -> agent_state_pb2.TransferTaskResponse | None:
        snapshot.taken_at.CopyFrom(timestamp(time.time()))
        await producer.publish(service.settings.topic_queue_snapshots, ws, snapshot)
        try:
            return await service.stub.TransferTask(request)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            return None

    try:
        answer = await eventually(transferred)
        wrong = agent_state_pb2.TransferTaskRequest(
            agent_id="ida", inquiry_id="chat-7", target_queue="sales"
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.TransferTask(wrong)
    finally:
        await producer.stop()
    assert load_of(answer.agent, CHAT) == 0
    # A transfer made is remembered: another queue is not this call's retry, and ida
    # holds the task no more.
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    event = await task_events.wait_for(
        lambda e: e.type == TaskEvent.TYPE_TRANSFERRED and e.inquiry_id == "chat-7"
    )
    assert (event.agent_id, event.target_queue, event.note) == ("ida", "tech", "the note")
    assert not event.target_agent_id


async def test_list_agents_filters(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "gus", {CHAT: 1})
    specialist = make_agent(ws, "hal", {"billing": 5}, {CHAT: 2}, tier=2, languages=("es",))
    await service.stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=specialist))
    await service.stub.ReserveAgent(reserve(ws, "gus", "chat-1"))

    async def ids(**filters: object) -> list[str]:
        request = agent_state_pb2.ListAgentsRequest(workspace=ws, **filters)  # type: ignore[arg-type]
        return [a.id for a in (await service.stub.ListAgents(request)).agents]

    assert await ids() == ["gus", "hal"]
    assert await ids(status=AVAILABLE) == ["gus"]
    assert await ids(skill="billing", min_proficiency=4) == ["hal"]
    assert await ids(language="es") == ["hal"]
    assert await ids(tier=agent_pb2.TIER_SPECIALIST) == ["hal"]
    assert await ids(free_on_channel=CHAT) == []  # gus is full, hal is offline


@pytest.mark.parametrize(
    ("call", "request_message", "code", "names"),
    [
        ("GetAgent", agent_state_pb2.GetAgentRequest(), "INVALID_ARGUMENT", "agent_id"),
        ("GetAgent", agent_state_pb2.GetAgentRequest(agent_id="nobody"), "NOT_FOUND", "nobody"),
        ("ListAgents", agent_state_pb2.ListAgentsRequest(), "INVALID_ARGUMENT", "workspace"),
        (
            "UpsertAgent",
            agent_state_pb2.UpsertAgentRequest(
                agent=agent_pb2.Agent(id="x", tier=agent_pb2.TIER_REPRESENTATIVE)
            ),
            "INVALID_ARGUMENT",
            "agent.workspace",
        ),
        (
            "ReserveAgent",
            agent_state_pb2.ReserveAgentRequest(agent_id="x", inquiry_id="i"),
            "INVALID_ARGUMENT",
            "channel",
        ),
        (
            "SetStatus",
            agent_state_pb2.SetStatusRequest(agent_id="nobody", status=AWAY, reason="lunch"),
            "NOT_FOUND",
            "nobody",
        ),
        (
            "CompleteTask",
            agent_state_pb2.CompleteTaskRequest(agent_id="x", inquiry_id="i", resolution=99),  # type: ignore[arg-type]
            "INVALID_ARGUMENT",
            "resolution",
        ),
        (
            "TransferTask",
            agent_state_pb2.TransferTaskRequest(agent_id="x", inquiry_id="i"),
            "INVALID_ARGUMENT",
            "target_agent_id",
        ),
    ],
)
async def test_invalid_requests_get_clear_status_codes(
    service: Running, call: str, request_message: object, code: str, names: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(service.stub, call)(request_message)
    assert refused.value.code().name == code
    assert names in (refused.value.details() or "")
    # The server is still serving.
    health = await service.stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace="any"))
    assert list(health.agents) == []


async def test_metrics_show_agents_load_and_calls(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ivy", {CHAT: 4})
    await service.stub.ReserveAgent(reserve(ws, "ivy", "chat-1"))
    text = generate_latest(service.registry).decode()
    assert f'omniroute_agent_state_agents{{status="available",workspace="{ws}"}} 1.0' in text
    assert f'omniroute_agent_state_load{{channel="chat",workspace="{ws}"}} 1.0' in text
    assert f'omniroute_agent_state_capacity{{channel="chat",workspace="{ws}"}} 4.0' in text
    assert f'omniroute_agent_state_occupancy_ratio{{workspace="{ws}"}} 0.25' in text
    assert (
        f'omniroute_agent_state_open_reservations{{state="offered",workspace="{ws}"}} 1.0' in text
    )
    assert 'omniroute_agent_state_reservations_total{outcome="reserved"} 1.0' in text
    assert 'omniroute_agent_state_rpcs_total{code="OK",method="ReserveAgent"} 1.0' in text
    assert 'omniroute_agent_state_rpc_seconds_count{code="OK",method="ReserveAgent"} 1.0' in text
    assert 'omniroute_agent_state_task_events_total{type="offer_timeout"} 0.0' in text


async def test_only_configured_workspaces_label_the_metrics(broker: Broker) -> None:
    """Workspace names come from clients: the others are summed under workspace="other"."""
    known, stranger, another = new_workspace(), new_workspace(), new_workspace()
    async with agent_state_service(broker, METRICS_WORKSPACES=f'["{known}"]') as service:
        await available_agent(service.stub, known, "kim", {CHAT: 2})
        await available_agent(service.stub, stranger, "sam", {CHAT: 2})
        await available_agent(service.stub, another, "ann", {CHAT: 4})
        await service.stub.ReserveAgent(reserve(another, "ann", "chat-1"))
        text = generate_latest(service.registry).decode()
    agents = "omniroute_agent_state_agents"
    assert f'{agents}{{status="available",workspace="{known}"}} 1.0' in text
    assert f'{agents}{{status="available",workspace="other"}} 2.0' in text
    assert 'omniroute_agent_state_capacity{channel="chat",workspace="other"} 6.0' in text
    assert 'omniroute_agent_state_load{channel="chat",workspace="other"} 1.0' in text
    assert stranger not in text and another not in text
