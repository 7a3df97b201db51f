"""Chaos scenarios: faults injected on the real processes while simulated desks work.

Each scenario starts its own system (agent-state, ingest, one or two router
workers) on the session's broker, posts a bounded load through ingest, injects
its fault, and then checks the rules of tests/chaos/invariants.py: every
accepted inquiry resolved (none lost or stuck), never two open offers for one
inquiry, no agent above capacity, every confirmed change on the topics, and the
router's and agent-state's pictures in agreement at the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.chaos.harness import Broker, ChaosRun, broker_label, chaos_system
from tests.support.processes import WallClock, paused
from tests.support.tools import require

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# The router workers' consumer-group session (KAFKA_SESSION_TIMEOUT_S): a worker
# paused longer than this loses its partitions.
SESSION_S = 6
# Longer than the services' producers wait for an acknowledgement (10 s): writes
# made during the pause fail rather than merely wait.
BROKER_PAUSE_S = 14


async def _finish(run: ChaosRun, load: asyncio.Task[None], settle_s: float = 90) -> None:
    await load
    verdict = await run.verdict(settle_s=settle_s)
    assert verdict.clean, run.report(verdict)


@pytest.mark.chaos
async def test_broker_paused_while_offers_expire(broker: Broker) -> None:
    """The broker stops (SIGSTOP) while open offers pass their expiry: agent-state's
    expiry round cannot write its OFFER_TIMEOUT events until the broker is back."""
    with chaos_system(broker) as system:
        async with ChaosRun(system, "broker-pause", broker_label(broker)) as run:
            load = run.load(run.keys(30), rate_per_s=6)
            await run.until(lambda: len(run.accepted) >= 10)
            run.behaviour.responsive = False  # the next offers go unanswered...
            await run.until(lambda: run.open_offers() >= 4, timeout_s=20)
            with paused(broker.process):  # ...and expire while the broker is frozen
                await asyncio.sleep(BROKER_PAUSE_S)
            run.behaviour.responsive = True
            await _finish(run, load)


@pytest.mark.chaos
async def test_agent_state_killed_after_confirmed_changes(broker: Broker) -> None:
    """agent-state dies (SIGKILL) right after confirming changes to desks and restarts
    from its topics; the second time, the broker was frozen first, so calls cut off
    while it was away are retried and answered before the kill. Every change a desk was
    told about must survive with its event."""
    with chaos_system(broker) as system:
        async with ChaosRun(system, "agent-state-kill", broker_label(broker)) as run:
            load = run.load(run.keys(40), rate_per_s=5)
            for broker_paused_first in (False, True):
                if broker_paused_first:
                    with paused(broker.process):
                        await asyncio.sleep(BROKER_PAUSE_S)
                confirmed = len(run.ledger.confirmed)
                await run.until(lambda c=confirmed: len(run.ledger.confirmed) >= c + 6)
                system.processes["agent-state"].kill()
                await asyncio.sleep(1)
                await run.in_thread(lambda: system.restart("agent-state"))
            await _finish(run, load)


@pytest.mark.chaos
async def test_decline_and_complete_during_broker_pause(broker: Broker) -> None:
    """Desks decline offers and complete tasks while the broker is frozen for longer
    than agent-state's producer waits; they retry with the same request id until
    answered. Every answer they got must be on the topics, and nothing stuck."""
    with chaos_system(broker) as system:
        async with ChaosRun(system, "decline-complete-broker-pause", broker_label(broker)) as run:
            run.behaviour.handle_s = (2.0, 4.0)  # tasks accepted before the pause end in it
            load = run.load(run.keys(30), rate_per_s=8)
            await run.until(lambda: sum(c.kind == "accepted" for c in run.ledger.confirmed) >= 4)
            run.behaviour.decline_percent = 100  # first offers answered in the pause: declined
            with paused(broker.process):
                await asyncio.sleep(BROKER_PAUSE_S)
            run.behaviour.decline_percent = 10
            run.behaviour.handle_s = (0.3, 1.5)
            await _finish(run, load)


@pytest.mark.chaos
async def test_router_worker_killed_repeatedly_under_load(broker: Broker) -> None:
    """Two router workers; one of them is SIGKILLed and restarted, three times in
    turn, while inquiries keep coming."""
    with chaos_system(broker, routers=2) as system:
        async with ChaosRun(system, "router-kill", broker_label(broker), workspaces=6) as run:
            load = run.load(run.keys(60), rate_per_s=3)
            for victim in ("router", "router-2", "router"):
                await asyncio.sleep(3)
                system.processes[victim].kill()
                await asyncio.sleep(2)
                await run.in_thread(lambda v=victim: system.restart(v))
            await _finish(run, load)


@pytest.mark.chaos
async def test_zombie_router_worker_wakes_after_its_partitions_moved(broker: Broker) -> None:
    """A router worker frozen (SIGSTOP) past its session loses its partitions to the
    other worker, which works off the backlog; then it wakes with its old picture
    (inquiries waiting, agents busy) and reads on. It must not offer anything its
    partitions' new owner has resolved or offered."""
    with chaos_system(broker, routers=2) as system:
        run = ChaosRun(
            system, "router-zombie", broker_label(broker), workspaces=6,
            agents_per_workspace=2, chat_capacity=1,
        )  # fmt: skip
        async with run:
            run.behaviour.handle_s = (1.0, 2.5)  # a queue builds up behind busy agents
            load = run.load(run.keys(60), rate_per_s=6)
            await run.until(lambda: len(run.resolved()) >= 5)
            zombie = system.processes["router"]
            zombie.pause()
            try:
                await run.until(lambda: system.router_partitions("router-2") == 4, 60)
                await asyncio.sleep(2 * SESSION_S)  # the survivor resolves what it took over
            finally:
                zombie.resume()
            await _finish(run, load)


@pytest.mark.chaos_smoke
async def test_agent_state_paused_under_load(broker: Broker) -> None:
    """agent-state freezes (SIGSTOP) for longer than the router's call deadline while
    inquiries arrive and desks answer; then it carries on."""
    with chaos_system(broker) as system:
        async with ChaosRun(system, "agent-state-pause", broker_label(broker)) as run:
            load = run.load(run.keys(40), rate_per_s=6)
            await run.until(lambda: len(run.accepted) >= 12)
            agent_state = system.processes["agent-state"]
            agent_state.pause()
            try:
                await asyncio.sleep(8)
            finally:
                agent_state.resume()
            await _finish(run, load)


@pytest.mark.chaos_smoke
async def test_same_inquiry_id_in_two_workspaces(broker: Broker) -> None:
    """Two workspaces get inquiries with the same client-chosen ids: each is routed,
    offered and resolved in its own workspace, and no desk sees the other's offer."""
    with chaos_system(broker) as system:
        async with ChaosRun(system, "same-id-two-workspaces", broker_label(broker), workspaces=2) as run:  # fmt: skip
            keys = [(ws, f"same-{n}") for n in range(15) for ws in run.workspaces]
            load = run.load(keys, rate_per_s=10)
            await _finish(run, load, settle_s=60)


@pytest.mark.chaos
@pytest.mark.parametrize("target", ["agent-state", "router"])
async def test_clock_steps(broker: Broker, target: str) -> None:
    """One process's wall clock steps forward 120 s and then back 240 s while it runs
    (libfaketime); its monotonic clock runs on. Offers live 30 s here and desks answer
    within a second, so no offer may expire and no desk session lapse: a step is not
    time passing. On a router worker, the other worker is then killed, so the one with
    the stepped clock takes over inquiries queued "in its future"."""
    require("faketime")
    clock = WallClock()
    offers = {"OFFER_TTL_S": "30"}
    if target == "agent-state":
        setup: dict[str, Any] = {"agent_state_env": {**offers, **clock.env()}}
    else:
        setup = {"routers": 2, "agent_state_env": offers, "router_env": {"router-2": clock.env()}}
    with chaos_system(broker, **setup) as system:
        async with ChaosRun(system, f"clock-step-{target}", broker_label(broker), workspaces=4) as run:  # fmt: skip
            run.expiries_allowed = False
            load = run.load(run.keys(40), rate_per_s=5)
            await run.until(lambda: len(run.resolved()) >= 5)
            clock.step(+120)
            await asyncio.sleep(4)
            clock.step(-240)
            if target == "router":
                await asyncio.sleep(2)
                system.processes["router"].kill()
            await _finish(run, load)
