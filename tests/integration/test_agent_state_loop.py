"""agent-state's side of the routing loop, over real gRPC and the real broker.

Withdrawals and timeouts reach the desk, reservations are looked up by
workspace and inquiry, router workers are fenced, retries are answered the
same, escalations are validated at the edge.
"""

from __future__ import annotations

import grpc
import pytest

from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from omniroute_router.reservations import AgentStateClient, ReservationRefused, Reserved
from tests.support.agent_state import (
    OfferFeed,
    Running,
    available_agent,
    eventually,
    published_fixture,
    reserve,
    service_fixture,
)
from tests.support.kafka import TopicTail
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

CHAT, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
TaskEvent = task_pb2.TaskEvent
Offer = agent_state_pb2.Offer


# agent-state whose chat offers expire after two seconds, e-mail after five minutes.
service = service_fixture(OFFER_TTL_S="2", OFFER_TTL_BY_CHANNEL='{"email": 300}')
task_events = published_fixture("topic_task_events", task_pb2.TaskEvent)


def fenced(
    request: agent_state_pb2.ReserveAgentRequest, generation: int, partition: int = 0
) -> agent_state_pb2.ReserveAgentRequest:
    request.fence.CopyFrom(
        agent_state_pb2.RouterFence(group="router-x", partition=partition, generation=generation)
    )
    return request


async def test_withdraw_offer_tells_the_desk_and_the_router(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {EMAIL: 5})
    made = await service.stub.ReserveAgent(reserve(ws, "ann", "mail-1", EMAIL))
    async with OfferFeed(service.stub, "ann") as desk:
        await desk.wait_for(lambda o: o.reservation.inquiry_id == "mail-1")
        answer = await service.stub.WithdrawOffer(
            agent_state_pb2.WithdrawOfferRequest(
                workspace=ws, inquiry_id="mail-1", reason="abandoned"
            )
        )
        assert answer.withdrawn.reservation_id == made.reservation.reservation_id
        assert not answer.agent.reservations
        await desk.wait_for(lambda o: o.status == Offer.STATUS_WITHDRAWN)
        assert desk.about("mail-1") == [("STATUS_OPEN", ""), ("STATUS_WITHDRAWN", "abandoned")]
    event = await task_events.wait_for(
        lambda e: e.workspace == ws and e.type == TaskEvent.TYPE_WITHDRAWN
    )
    assert (event.inquiry_id, event.reason) == ("mail-1", "abandoned")
    # Withdrawing again is a retry: OK, nothing withdrawn.
    again = await service.stub.WithdrawOffer(
        agent_state_pb2.WithdrawOfferRequest(workspace=ws, inquiry_id="mail-1")
    )
    assert not again.HasField("withdrawn")
    looked_up = await service.stub.GetReservation(
        agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id="mail-1")
    )
    assert not looked_up.HasField("reservation")
    assert looked_up.last_event.type == TaskEvent.TYPE_WITHDRAWN


async def test_a_missed_offer_reaches_the_desk_with_the_offers_it_takes_back(
    service: Running,
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "bea", {CHAT: 2, EMAIL: 5})
    async with OfferFeed(service.stub, "bea") as desk:
        await eventually(lambda: "bea" in service.server.servicer.open_desks)
        await service.stub.ReserveAgent(reserve(ws, "bea", "chat-1", CHAT))
        await service.stub.ReserveAgent(reserve(ws, "bea", "mail-1", EMAIL))
        # The chat offer is missed: it times out and the e-mail offer goes back too.
        await desk.wait_for(lambda o: o.reservation.inquiry_id == "mail-1" and o.status)
        assert desk.about("chat-1") == [("STATUS_OPEN", ""), ("STATUS_TIMED_OUT", "offer_timeout")]
        assert desk.about("mail-1") == [("STATUS_OPEN", ""), ("STATUS_WITHDRAWN", "missed_offer")]
    bea = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="bea"))
    assert (bea.status, bea.away_reason, list(bea.reservations)) == (
        agent_pb2.AGENT_STATUS_AWAY,
        "missed_offer",
        [],
    )


async def test_reservations_are_looked_up_and_listed_by_workspace(service: Running) -> None:
    acme, globex = new_workspace(), new_workspace()
    await available_agent(service.stub, acme, "ann", {EMAIL: 5})
    await available_agent(service.stub, globex, "bob", {EMAIL: 5})
    a = await service.stub.ReserveAgent(reserve(acme, "ann", "inq-1", EMAIL))
    b = await service.stub.ReserveAgent(reserve(globex, "bob", "inq-1", EMAIL))
    # The same client-chosen id in two workspaces: two reservations, never the other's.
    assert not b.already_reserved and b.reservation.agent_id == "bob"
    assert (a.reservation.workspace, b.reservation.workspace) == (acme, globex)
    await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="bob", inquiry_id="inq-1"))
    found = await service.stub.GetReservation(
        agent_state_pb2.GetReservationRequest(workspace=globex, inquiry_id="inq-1")
    )
    assert found.reservation.agent_id == "bob" and found.reservation.accepted
    assert found.last_event.type == TaskEvent.TYPE_ACCEPTED
    listed = await service.stub.ListReservations(
        agent_state_pb2.ListReservationsRequest(workspace=acme)
    )
    assert [(r.agent_id, r.inquiry_id, r.accepted) for r in listed.reservations] == [
        ("ann", "inq-1", False)
    ]
    assert listed.as_of.seconds > 0
    for call, request in (
        (service.stub.GetReservation, agent_state_pb2.GetReservationRequest(inquiry_id="x")),
        (service.stub.ListReservations, agent_state_pb2.ListReservationsRequest()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(request)  # type: ignore[operator]
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "workspace" in (refused.value.details() or "")


async def test_an_older_router_generation_is_refused_aborted(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {EMAIL: 5})
    await service.stub.ReserveAgent(fenced(reserve(ws, "ann", "one", EMAIL), generation=5))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ReserveAgent(fenced(reserve(ws, "ann", "two", EMAIL), generation=4))
    assert refused.value.code() == grpc.StatusCode.ABORTED
    assert "no longer owns" in (refused.value.details() or "")
    withdraw = agent_state_pb2.WithdrawOfferRequest(workspace=ws, inquiry_id="one")
    withdraw.fence.CopyFrom(agent_state_pb2.RouterFence(group="router-x", generation=4))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.WithdrawOffer(withdraw)
    assert refused.value.code() == grpc.StatusCode.ABORTED
    # Nothing the zombie asked for happened; the new owner goes on.
    ann = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
    assert [r.inquiry_id for r in ann.reservations] == ["one"]
    await service.stub.ReserveAgent(fenced(reserve(ws, "ann", "two", EMAIL), generation=6))


async def test_a_request_id_gets_the_same_answer(
    service: Running, task_events: TopicTail[task_pb2.TaskEvent]
) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "ann", {EMAIL: 5})
    request = reserve(ws, "ann", "inq-r", EMAIL)
    request.request_id = "reserve-inq-r-1"
    first = await service.stub.ReserveAgent(request)
    second = await service.stub.ReserveAgent(request)
    assert second == first and not second.already_reserved
    decline = agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="inq-r", request_id="d-1")
    declined = await service.stub.DeclineTask(decline)
    assert await service.stub.DeclineTask(decline) == declined
    # A retry may rebuild what the request only carries along (the assignment
    # holds the time it was made): the same request, the same answer.
    request.assignment.assigned_at.FromSeconds(1_800_000_000)
    assert await service.stub.ReserveAgent(request) == first
    request.inquiry_id = "inq-s"  # the same id for another request is a client bug
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ReserveAgent(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (refused.value.details() or "")
    events = await task_events.wait_count(lambda e: e.workspace == ws, 2)
    assert [TaskEvent.Type.Name(e.type) for e in events] == ["TYPE_OFFERED", "TYPE_DECLINED"]


async def router_reserve(
    router: AgentStateClient, offer: task_pb2.Assignment, fence: agent_state_pb2.RouterFence
) -> Reserved:
    """One reservation through the router's client (a batch of one); a refusal raised."""
    (result,) = await router.reserve_all([offer], fence)
    if not isinstance(result, Reserved):
        raise result
    return result


async def test_a_resolved_inquiry_is_refused_with_the_event_that_resolved_it(
    service: Running,
) -> None:
    ws = new_workspace()
    for agent_id in ("ann", "bob"):
        await available_agent(service.stub, ws, agent_id, {EMAIL: 5})
    router = AgentStateClient(service.target)
    try:
        fence = agent_state_pb2.RouterFence(group="router-x", generation=3)
        offer = task_pb2.Assignment(
            inquiry_id="done", workspace=ws, agent_id="ann", attempt=1, channel=EMAIL
        )
        reserved = await router_reserve(router, offer, fence)
        await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="done"))  # fmt: skip
        await service.stub.CompleteTask(
            agent_state_pb2.CompleteTaskRequest(
                agent_id="ann", inquiry_id="done", resolution=task_pb2.RESOLUTION_RESOLVED
            )
        )
        # The next owner of the partition lost the resolution and routes it again:
        # its first attempt (to the same agent, then to another) is refused, and
        # says why; it is not mistaken for a retry of the first owner's request.
        fence.generation = 4
        for agent_id in ("ann", "bob"):
            offer.agent_id = agent_id
            offer.assigned_at.FromSeconds(1_800_000_000)
            with pytest.raises(ReservationRefused) as refused:
                await router_reserve(router, offer, fence)
            last = refused.value.last_event
            assert last is not None
            assert (last.type, last.agent_id, last.reservation_id) == (
                TaskEvent.TYPE_COMPLETED,
                "ann",
                reserved.reservation.reservation_id,
            )
        bob = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="bob"))
        assert not bob.reservations
        # A follow-up comes back: that is routed again.
        offer.inquiry_id = "later"
        await router_reserve(router, offer, fence)
        await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="bob", inquiry_id="later"))  # fmt: skip
        follow_up = task_pb2.FollowUp()
        follow_up.due_at.FromSeconds(1_800_000_000)
        await service.stub.CompleteTask(
            agent_state_pb2.CompleteTaskRequest(
                agent_id="bob",
                inquiry_id="later",
                resolution=task_pb2.RESOLUTION_FOLLOW_UP,
                follow_up=follow_up,
            )
        )
        offer.agent_id, offer.attempt = "ann", 2
        again = await router_reserve(router, offer, fence)
        assert again.reservation.agent_id == "ann" and not again.already_reserved
    finally:
        await router.close()


async def test_invalid_escalations_are_refused_naming_the_field(service: Running) -> None:
    ws = new_workspace()
    await available_agent(service.stub, ws, "sup", {EMAIL: 5})
    await service.stub.UpsertAgent(
        agent_state_pb2.UpsertAgentRequest(
            agent=agent_pb2.Agent(
                id="sup",
                workspace=ws,
                tier=agent_pb2.TIER_SUPERVISOR,
                skills={"billing": 3},
                capacities=[agent_pb2.ChannelCapacity(channel=EMAIL, capacity=5)],
            )
        )
    )
    for inquiry in ("a", "b"):
        await service.stub.ReserveAgent(reserve(ws, "sup", inquiry, EMAIL))
        await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="sup", inquiry_id=inquiry))  # fmt: skip
    escalated = task_pb2.RESOLUTION_ESCALATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CompleteTask(
            agent_state_pb2.CompleteTaskRequest(
                agent_id="sup",
                inquiry_id="a",
                resolution=escalated,
                escalation=task_pb2.Escalation(target_tier=99, reason="stuck"),  # type: ignore[arg-type]
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "escalation.target_tier" in (refused.value.details() or "")
    done = await service.stub.CompleteTask(
        agent_state_pb2.CompleteTaskRequest(
            agent_id="sup",
            inquiry_id="b",
            resolution=escalated,
            escalation=task_pb2.Escalation(target_queue="complaints", reason="legal"),
        )
    )
    assert [r.inquiry_id for r in done.reservations] == ["a"]
