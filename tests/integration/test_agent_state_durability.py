"""Fault tests: agent-state answers only what is durable, and keeps expiring under faults.

The broker is paused (SIGSTOP) while calls are made and offers expire; callers
are cut off by their deadlines and retry. agent-state is killed (SIGKILL)
right after confirmed changes. A forged record and a failing agent must not
stop expiry for everyone, and a failing expiry shows in health.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute.embedded import Broker
from omniroute.kafka import EventProducer
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from omniroute_agent_state.journal import Journal
from tests.support.agent_state import (
    OfferFeed,
    Running,
    agent_state_env,
    available_agent,
    eventually,
    published,
    reserve,
    service_fixture,
    serving,
    settings_from,
)
from tests.support.processes import ServiceProcess, paused
from tests.support.system import new_workspace, port_open

pytestmark = pytest.mark.integration

CHAT, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
TaskEvent = task_pb2.TaskEvent
CUT_OFF = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# Longer than the producer's own wait (10 s): before the outbox, writes made
# during the pause were dropped for good.
PAUSE_S = 12.0
DEADLINE_S = 1.5


async def cut_off(call: object) -> grpc.StatusCode:
    """The status of a call that the paused broker keeps from being answered OK."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    return failed.value.code()


service = service_fixture(OFFER_TTL_S="2", OFFER_TTL_BY_CHANNEL='{"email": 300}')


async def test_calls_cut_off_during_a_broker_pause_are_kept_and_their_retries_answered(
    broker: Broker, service: Running
) -> None:
    stub, ws = service.stub, new_workspace()
    async with published(service, service.settings.topic_task_events, TaskEvent) as events:
        await available_agent(stub, ws, "ann", {EMAIL: 5})
        await available_agent(stub, ws, "bob", {CHAT: 1})
        await available_agent(stub, ws, "cy", {EMAIL: 5})
        await stub.ReserveAgent(reserve(ws, "ann", "to-decline", EMAIL))
        await stub.ReserveAgent(reserve(ws, "ann", "to-complete", EMAIL))
        await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="to-complete"))  # fmt: skip
        async with OfferFeed(stub, "cy") as desk:
            await eventually(lambda: "cy" in service.server.servicer.open_desks)
            offer = reserve(ws, "cy", "to-offer", EMAIL)
            offer.request_id = "offer-to-offer-1"
            decline = agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="to-decline")
            complete = agent_state_pb2.CompleteTaskRequest(agent_id="ann", inquiry_id="to-complete")
            with paused(broker.process):
                codes = [
                    await cut_off(stub.ReserveAgent(offer, timeout=DEADLINE_S)),
                    await cut_off(stub.DeclineTask(decline, timeout=DEADLINE_S)),
                    await cut_off(stub.CompleteTask(complete, timeout=DEADLINE_S)),
                    # bob's offer times out while the broker is still paused.
                    await cut_off(
                        stub.ReserveAgent(reserve(ws, "bob", "to-miss", CHAT), timeout=DEADLINE_S)
                    ),
                ]
                assert set(codes) <= CUT_OFF, codes
                await asyncio.sleep(PAUSE_S)
            # Retries: the same answers as if the first calls had got through.
            offered = await stub.ReserveAgent(offer)
            assert not offered.already_reserved and offered.reservation.agent_id == "cy"
            assert await stub.ReserveAgent(offer) == offered
            ann = await stub.DeclineTask(decline)
            ann = await stub.CompleteTask(complete)
            assert not ann.reservations
            # The desk was told of the offer whose first call was cut off.
            pushed = await desk.wait_for(lambda o: o.reservation.inquiry_id == "to-offer")
            assert pushed.reservation.reservation_id == offered.reservation.reservation_id
        # Every event exists, once in effect (a re-send keeps its event id).
        wanted = {
            ("to-offer", TaskEvent.TYPE_OFFERED),
            ("to-decline", TaskEvent.TYPE_DECLINED),
            ("to-complete", TaskEvent.TYPE_COMPLETED),
            ("to-miss", TaskEvent.TYPE_OFFERED),
            ("to-miss", TaskEvent.TYPE_OFFER_TIMEOUT),
        }
        await events.wait_count(
            lambda e: e.workspace == ws and (e.inquiry_id, e.type) in wanted, len(wanted)
        )
        ids: dict[tuple[str, int], set[str]] = {}
        for e in events.records:
            if e.workspace == ws:
                ids.setdefault((e.inquiry_id, e.type), set()).add(e.event_id)
        assert all(len(ids[key]) == 1 for key in wanted), ids
    bob = await stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="bob"))
    assert (bob.status, bob.away_reason) == (agent_pb2.AGENT_STATUS_AWAY, "missed_offer")


async def test_what_was_confirmed_is_back_after_a_sigkill(broker: Broker) -> None:
    port = free_port()
    env = agent_state_env(
        broker,
        AGENT_STATE_PORT=str(port),
        AGENT_STATE_METRICS_PORT=str(free_port()),
        OFFER_TTL_S="300",
        LOG_LEVEL="WARNING",
    )
    ws = new_workspace()
    fence = agent_state_pb2.RouterFence(group="router-k", partition=1, generation=7)
    first = ServiceProcess("omniroute_agent_state", env).start()
    second: ServiceProcess | None = None
    try:
        first.wait_until(lambda: port_open(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            await available_agent(stub, ws, "ann", {EMAIL: 5})
            kept = reserve(ws, "ann", "kept", EMAIL)
            kept.fence.CopyFrom(fence)
            kept.request_id = "kept-1"
            # Cut off while the broker is paused, confirmed by the retry after it.
            with paused(broker.process):
                assert await cut_off(stub.ReserveAgent(kept, timeout=DEADLINE_S)) in CUT_OFF
                await asyncio.sleep(PAUSE_S)
            confirmed = await stub.ReserveAgent(kept)
            await stub.ReserveAgent(reserve(ws, "ann", "done", EMAIL))
            await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="done"))
            await stub.ReserveAgent(reserve(ws, "ann", "gone", EMAIL))
            await stub.WithdrawOffer(
                agent_state_pb2.WithdrawOfferRequest(workspace=ws, inquiry_id="gone", reason="x")
            )
            before = await stub.CompleteTask(
                agent_state_pb2.CompleteTaskRequest(agent_id="ann", inquiry_id="done")
            )
        first.stop(signal.SIGKILL)  # right after the last answer

        second = ServiceProcess("omniroute_agent_state", env).start()
        second.wait_until(lambda: port_open(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            after = await stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
            assert after == before
            assert [r.reservation_id for r in after.reservations] == [
                confirmed.reservation.reservation_id
            ]
            # What happened to each inquiry is still known ...
            for inquiry, kind in (("done", TaskEvent.TYPE_COMPLETED), ("gone", TaskEvent.TYPE_WITHDRAWN)):  # fmt: skip
                found = await stub.GetReservation(
                    agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id=inquiry)
                )
                assert found.last_event.type == kind, inquiry
            # ... so a retried completion is still answered OK ...
            again = await stub.CompleteTask(
                agent_state_pb2.CompleteTaskRequest(agent_id="ann", inquiry_id="done")
            )
            assert again.version == before.version
            # ... and the fence still keeps the old owner out.
            stale = reserve(ws, "ann", "late", EMAIL)
            stale.fence.CopyFrom(fence)
            stale.fence.generation = 6
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ReserveAgent(stale)
            assert refused.value.code() == grpc.StatusCode.ABORTED
    except BaseException:
        print(first.log())
        if second is not None:
            print(second.log())
        raise
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def _health(service: Running) -> int:
    stub = health_pb2_grpc.HealthStub(service.channel)
    return (await stub.Check(health_pb2.HealthCheckRequest())).status  # type: ignore[no-any-return]


async def test_a_forged_record_never_stops_expiry(broker: Broker) -> None:
    settings = settings_from(agent_state_env(broker, OFFER_TTL_S="1", OFFER_TTL_BY_CHANNEL="{}"))
    ws = new_workspace()
    forged = agent_pb2.Agent(
        id="eve",
        workspace=ws,
        tier=agent_pb2.TIER_REPRESENTATIVE,
        status=agent_pb2.AGENT_STATUS_AVAILABLE,
        version=2**63 - 1,
        capacities=[agent_pb2.ChannelCapacity(channel=CHAT, capacity=1, load=1)],
    )
    held = forged.reservations.add(reservation_id="r-eve", agent_id="eve", inquiry_id="x")
    held.channel = CHAT
    held.expires_at.FromSeconds(int(time.time()) - 60)  # long expired
    producer = EventProducer(settings, "test-forger")
    await producer.start()
    try:
        await Journal(settings, producer).prepare()  # the topics as the service makes them
        await producer.publish(settings.topic_agent_snapshots, "eve", forged)
    finally:
        await producer.stop()
    async with serving(settings) as service:
        async with published(service, settings.topic_task_events, TaskEvent) as events:
            await available_agent(service.stub, ws, "ann", {CHAT: 1})
            await service.stub.ReserveAgent(reserve(ws, "ann", "inq-ann", CHAT))
            await events.wait_for(
                lambda e: e.inquiry_id == "inq-ann" and e.type == TaskEvent.TYPE_OFFER_TIMEOUT
            )
        assert await _health(service) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="eve"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def _metric(service: Running, name: str) -> float:
    return float(service.registry.get_sample_value(name) or 0.0)


async def test_a_failing_expiry_shows_in_health_and_the_others_still_expire(
    broker: Broker,
) -> None:
    settings = settings_from(agent_state_env(broker, OFFER_TTL_S="1", OFFER_TTL_BY_CHANNEL="{}"))
    ws = new_workspace()
    async with serving(settings) as service:
        stub, roster = service.stub, service.server.servicer.roster
        async with published(service, settings.topic_task_events, TaskEvent) as events:
            for name in ("ann", "bob"):
                await available_agent(stub, ws, name, {CHAT: 1})
            await stub.ReserveAgent(reserve(ws, "bob", "inq-bob", CHAT))
            # A bug for one agent: its next change cannot be made.
            roster.agents["bob"].version = 2**63 - 1
            await eventually(
                lambda: _metric(service, "omniroute_agent_state_expiry_healthy") == 0.0
            )
            assert await _health(service) == health_pb2.HealthCheckResponse.NOT_SERVING
            assert _metric(service, "omniroute_agent_state_expiry_failures_total") >= 1
            # The others are still expired.
            await stub.ReserveAgent(reserve(ws, "ann", "inq-ann", CHAT))
            await events.wait_for(
                lambda e: e.inquiry_id == "inq-ann" and e.type == TaskEvent.TYPE_OFFER_TIMEOUT
            )
            # Once the agent can be expired again, health comes back.
            roster.agents["bob"].version = 10
            await eventually(
                lambda: _metric(service, "omniroute_agent_state_expiry_healthy") == 1.0
            )
            assert await _health(service) == health_pb2.HealthCheckResponse.SERVING
            await events.wait_for(
                lambda e: e.inquiry_id == "inq-bob" and e.type == TaskEvent.TYPE_OFFER_TIMEOUT
            )


async def test_an_expiry_round_that_fails_whole_shows_in_health(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(agent_state_env(broker))
    async with serving(settings) as service:
        roster = service.server.servicer.roster
        working = roster.expire

        def broken(now: float, mono: float | None = None) -> Any:
            raise RuntimeError("a bug in the rules")

        monkeypatch.setattr(roster, "expire", broken)
        await eventually(lambda: _metric(service, "omniroute_agent_state_expiry_healthy") == 0.0)
        assert await _health(service) == health_pb2.HealthCheckResponse.NOT_SERVING
        # The loop outlived the bug: once a round succeeds, it serves again.
        monkeypatch.setattr(roster, "expire", working)
        await eventually(lambda: _metric(service, "omniroute_agent_state_expiry_healthy") == 1.0)
        assert await _health(service) == health_pb2.HealthCheckResponse.SERVING
        assert not service.server.expiry.done()
