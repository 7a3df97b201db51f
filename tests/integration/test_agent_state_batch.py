"""ReserveAgents over real gRPC and the real broker: several reservations, one call.

Each reservation is decided as ReserveAgent decides it, in order, one refusal
stopping none; the call is answered once all of it is durable; a retry of
the same batch gets the same results and publishes nothing new in effect.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from tests.support.agent_state import (
    OfferFeed,
    Running,
    agent_state_service,
    available_agent,
    eventually,
    published_fixture,
    reserve,
    service_fixture,
)
from tests.support.kafka import TopicTail
from tests.support.processes import paused
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

CHAT, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
TaskEvent = task_pb2.TaskEvent
Code = grpc.StatusCode


service = service_fixture(OFFER_TTL_S="300", OFFER_TTL_BY_CHANNEL="{}")
task_events = published_fixture("topic_task_events", task_pb2.TaskEvent)


def batch(
    *requests: agent_state_pb2.ReserveAgentRequest,
    generation: int | None = None,
    request_ids: bool = False,
) -> agent_state_pb2.ReserveAgentsRequest:
    """A ReserveAgents call as a router worker sends it (one fence, optional request ids)."""
    copies = []
    for i, asked in enumerate(requests):
        request = agent_state_pb2.ReserveAgentRequest()
        request.CopyFrom(asked)
        copies.append(request)
        if generation is not None:
            request.fence.CopyFrom(
                agent_state_pb2.RouterFence(group="router-b", partition=0, generation=generation)
            )
        if request_ids:
            request.request_id = f"{request.inquiry_id}#{i}"
    return agent_state_pb2.ReserveAgentsRequest(reservations=copies)


def outcome(result: agent_state_pb2.ReserveAgentResult) -> tuple[str, ...]:
    """(reserved agent, already?) or (refused code name)."""
    if result.HasField("reserved"):
        return (result.reserved.reservation.agent_id, str(result.reserved.already_reserved))
    return (Code(next(c for c in Code if c.value[0] == result.refused.code)).name,)


async def test_a_mixed_batch_is_decided_one_by_one_in_order(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 2})
    await available_agent(service.stub, ws, "bob", {CHAT: 1})
    await available_agent(service.stub, ws, "cid", {EMAIL: 1})
    await service.stub.SetStatus(
        agent_state_pb2.SetStatusRequest(
            agent_id="cid", status=agent_pb2.AGENT_STATUS_AWAY, reason="break"
        )
    )
    held = await service.stub.ReserveAgent(reserve(ws, "bob", "held"))

    answer = await service.stub.ReserveAgents(
        batch(
            reserve(ws, "ann", "one"),
            reserve(ws, "ann", "two"),
            reserve(ws, "ann", "three"),  # ann is full now
            reserve(ws, "bob", "held"),  # held already (on bob)
            reserve(ws, "cid", "four", EMAIL),  # cid is away
            reserve(ws, "nobody", "five"),
            reserve(ws, "ann", ""),  # malformed: refused alone
            reserve(ws, "ann", "one"),  # the first of this batch
            generation=3,
        )
    )

    assert [outcome(r) for r in answer.results] == [
        ("ann", "False"),
        ("ann", "False"),
        ("FAILED_PRECONDITION",),
        ("bob", "True"),
        ("FAILED_PRECONDITION",),
        ("NOT_FOUND",),
        ("INVALID_ARGUMENT",),
        ("ann", "True"),
    ]
    full, away, malformed = (answer.results[i].refused for i in (2, 4, 6))
    assert "no free chat slot" in full.message and full.agent.id == "ann"
    assert "not available" in away.message and away.agent.status == agent_pb2.AGENT_STATUS_AWAY
    assert "inquiry_id" in malformed.message
    assert answer.results[3].reserved.reservation.reservation_id == (
        held.reservation.reservation_id
    )
    # Each record is the agent right after its own reservation.
    loads = [r.reserved.agent.capacities[0].load for r in answer.results[:2]]
    assert loads == [1, 2]
    # Answered once durable: both offers are on the topic, and the desk has them.
    for inquiry in ("one", "two"):
        await task_events.wait_for(
            lambda e, i=inquiry: e.inquiry_id == i and e.type == TaskEvent.TYPE_OFFERED  # type: ignore[misc]
        )
    async with OfferFeed(service.stub, "ann") as desk:
        offers = [
            await desk.wait_for(lambda o, i=i: o.reservation.inquiry_id == i)
            for i in ("one", "two")
        ]  # type: ignore[misc]
    assert all(o.assignment.attempt == 1 for o in offers)  # the router's assignment


async def test_a_resolved_inquiry_in_a_batch_is_refused_with_the_event_that_resolved_it(
    service: Running,
) -> None:
    ws = new_workspace()
    for agent_id in ("ann", "bob"):
        await available_agent(service.stub, ws, agent_id, {CHAT: 3})
    await service.stub.ReserveAgent(reserve(ws, "ann", "done"))
    await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="done"))
    await service.stub.CompleteTask(
        agent_state_pb2.CompleteTaskRequest(
            agent_id="ann", inquiry_id="done", resolution=task_pb2.RESOLUTION_RESOLVED
        )
    )
    answer = await service.stub.ReserveAgents(
        batch(reserve(ws, "bob", "done"), reserve(ws, "bob", "new"), generation=2)
    )
    assert [outcome(r) for r in answer.results] == [("FAILED_PRECONDITION",), ("bob", "False")]
    last = answer.results[0].refused.last_event
    assert (last.type, last.resolution, last.agent_id) == (
        TaskEvent.TYPE_COMPLETED,
        task_pb2.RESOLUTION_RESOLVED,
        "ann",
    )


async def test_a_stale_fence_refuses_the_whole_batch(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 3})
    await service.stub.ReserveAgents(batch(reserve(ws, "ann", "one"), generation=5))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ReserveAgents(
            batch(reserve(ws, "ann", "two"), reserve(ws, "ann", "three"), generation=4)
        )
    assert refused.value.code() == Code.ABORTED
    assert "no longer owns" in str(refused.value.details())
    ann = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
    assert [r.inquiry_id for r in ann.reservations] == ["one"]  # nothing of it was decided
    # The owner's generation still reserves, by batch and alone.
    again = await service.stub.ReserveAgents(batch(reserve(ws, "ann", "two"), generation=5))
    assert outcome(again.results[0]) == ("ann", "False")


async def test_a_retried_batch_gets_the_same_results_and_publishes_nothing_new(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 2})
    await available_agent(service.stub, ws, "bob", {CHAT: 1})
    requests = [
        reserve(ws, "ann", "one"),
        reserve(ws, "bob", "two"),
        reserve(ws, "bob", "three"),  # bob is full
    ]
    first = await service.stub.ReserveAgents(batch(*requests, generation=1, request_ids=True))
    retried = await service.stub.ReserveAgents(batch(*requests, generation=1, request_ids=True))
    assert list(retried.results) == list(first.results)  # same ids, same records, same refusal
    # Without request ids (say, after a restart) the natural key answers: already reserved.
    by_key = await service.stub.ReserveAgents(batch(*requests[:2], generation=1))
    assert [outcome(r) for r in by_key.results] == [("ann", "True"), ("bob", "True")]
    assert [r.reserved.reservation for r in by_key.results] == [
        r.reserved.reservation for r in first.results[:2]
    ]
    # One request alone with a batch's request id gets the batch's answer.
    alone = await service.stub.ReserveAgent(
        batch(*requests, generation=1, request_ids=True).reservations[0]
    )
    assert alone == first.results[0].reserved
    # Every event of one workspace is on one partition, in order: once a later
    # offer is seen, any repeat of the earlier ones would have been seen too.
    await available_agent(service.stub, ws, "cid", {CHAT: 1})
    await service.stub.ReserveAgent(reserve(ws, "cid", "marker"))
    await task_events.wait_for(lambda e: e.inquiry_id == "marker")
    offered = [
        e.inquiry_id
        for e in task_events.records
        if e.workspace == ws and e.type == TaskEvent.TYPE_OFFERED
    ]
    assert sorted(offered) == ["marker", "one", "two"]


async def test_a_malformed_batch_is_refused_naming_the_field(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 3})
    other_fence = reserve(ws, "ann", "two")
    other_fence.fence.CopyFrom(agent_state_pb2.RouterFence(group="router-b", generation=2))
    cases = {
        "reservations[1].workspace": batch(
            reserve(ws, "ann", "one"), reserve(new_workspace(), "ann", "two")
        ),
        "reservations[1].fence": batch(reserve(ws, "ann", "one"), other_fence),
        "reservations[1].request_id": batch(
            reserve(ws, "ann", "one"), reserve(ws, "ann", "two"), request_ids=False
        ),
        "reservations:": agent_state_pb2.ReserveAgentsRequest(
            reservations=[reserve(ws, "ann", f"inq-{i}") for i in range(1001)]
        ),
    }
    for request in cases["reservations[1].request_id"].reservations:
        request.request_id = "same"
    for field_name, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.ReserveAgents(request)
        assert refused.value.code() == Code.INVALID_ARGUMENT, field_name
        assert field_name in str(refused.value.details())
    ann = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
    assert not ann.reservations  # a batch refused as a whole decides nothing
    # A request id too long, or reused for another request, refuses that one alone.
    long_id = reserve(ws, "ann", "one")
    long_id.request_id = "x" * 129
    await service.stub.ReserveAgent(
        agent_state_pb2.ReserveAgentRequest(
            agent_id="ann", inquiry_id="two", channel=CHAT, workspace=ws, request_id="r-2"
        )
    )
    reused = reserve(ws, "ann", "three")
    reused.request_id = "r-2"
    answer = await service.stub.ReserveAgents(batch(long_id, reused, reserve(ws, "ann", "four")))
    assert [outcome(r) for r in answer.results] == [
        ("INVALID_ARGUMENT",),
        ("INVALID_ARGUMENT",),
        ("ann", "False"),
    ]
    assert "request_id" in answer.results[0].refused.message
    assert "already used" in answer.results[1].refused.message


async def test_only_the_router_may_reserve_in_batches(broker: Broker) -> None:
    async with agent_state_service(
        broker,
        AGENT_STATE_ALLOW_ANONYMOUS="false",
        AGENT_STATE_ADMIN_TOKENS='{"router": "r-token"}',
        AGENT_STATE_DESKTOP_TOKENS='{"d-token": "ann"}',
    ) as service:
        ws = new_workspace()
        router = (("authorization", "Bearer r-token"),)
        await available_agent(service.stub, ws, "ann", {CHAT: 1}, metadata=router)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.ReserveAgents(
                batch(reserve(ws, "ann", "one")),
                metadata=(("authorization", "Bearer d-token"),),
            )
        assert refused.value.code() == Code.PERMISSION_DENIED
        answer = await service.stub.ReserveAgents(batch(reserve(ws, "ann", "one")), metadata=router)
        assert outcome(answer.results[0]) == ("ann", "False")


async def test_a_batch_cut_off_by_a_paused_broker_is_kept_and_its_retry_answered(
    broker: Broker, service: Running
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {CHAT: 1})
    await available_agent(service.stub, ws, "bob", {CHAT: 1})
    request = batch(
        reserve(ws, "ann", "one"), reserve(ws, "bob", "two"), generation=1, request_ids=True
    )
    async with OfferFeed(service.stub, "bob") as desk:
        await eventually(lambda: "bob" in service.server.servicer.open_desks)
        with paused(broker.process):
            with pytest.raises(grpc.aio.AioRpcError) as cut_off:
                await service.stub.ReserveAgents(request, timeout=1.5)
            assert cut_off.value.code() in {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}
            # Kept: the agents are held while the broker is away.
            ann = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
            assert [r.inquiry_id for r in ann.reservations] == ["one"]
        retried = await service.stub.ReserveAgents(request)
        assert [outcome(r) for r in retried.results] == [("ann", "False"), ("bob", "False")]
        # The desk is told of the offer whose first call was cut off.
        pushed = await desk.wait_for(lambda o: o.reservation.inquiry_id == "two")
    assert pushed.reservation == retried.results[1].reserved.reservation
    assert pushed.assignment.attempt == 1


def rounds_and_records(service: Running) -> tuple[float, float]:
    """Write rounds so far and the records they sent (the group-commit histogram)."""
    name = "omniroute_agent_state_write_round_records"
    count = service.registry.get_sample_value(f"{name}_count") or 0.0
    total = service.registry.get_sample_value(f"{name}_sum") or 0.0
    return count, total


async def test_concurrent_calls_share_write_rounds(broker: Broker, service: Running) -> None:
    ws = new_workspace()
    for i in range(50):
        await available_agent(service.stub, ws, f"a{i}", {CHAT: 1})
    outbox = service.server.servicer.outbox
    await eventually(lambda: outbox.pending == 0)
    rounds_before, records_before = rounds_and_records(service)
    # The broker is slow to acknowledge (paused) while 50 calls arrive: the
    # first round waits for it, and every call made meanwhile joins the next.
    with paused(broker.process):
        calls = [
            asyncio.ensure_future(service.stub.ReserveAgent(reserve(ws, f"a{i}", f"inq-{i}")))
            for i in range(50)
        ]
        await eventually(lambda: outbox.last_seq - outbox.durable_seq >= 50)
    answers = await asyncio.gather(*calls)
    assert all(not a.already_reserved for a in answers)
    rounds, records = rounds_and_records(service)
    # Each call writes four records (agent event, snapshot, task event, and the
    # router's assignment, kept for the desk).
    assert records - records_before == 200
    assert rounds - rounds_before <= 2  # not one round per call
