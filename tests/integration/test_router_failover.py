"""Fail-over: a router worker killed mid-flight loses nothing and double-offers nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omniroute.embedded import Broker
from omniroute.ports import free_port
from tests.support.system import (
    CHAT,
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

WORKSPACES = 6
PER_WORKSPACE = 3


@pytest.fixture
def system(broker: Broker) -> Iterator[System]:
    yield from running(System(broker, partitions=4), "agent-state", "ingest", "router")


async def test_killing_a_worker_loses_no_inquiry_and_offers_none_twice(system: System) -> None:
    desk = Desk(system.agent_state_target)
    assignments = await read_assignments(system).start()
    try:
        # Each workspace: one agent with one chat slot and three chats, so at any
        # time one is offered or being handled and two wait in the queue.
        agent_of: dict[str, str] = {}
        inquiries: list[str] = []
        for _ in range(WORKSPACES):
            ws = new_workspace()
            agent_of[ws] = f"{ws}-agent"
            await desk.login(make_agent(ws, agent_of[ws], {"billing": 3}, {CHAT: 1}))
            inquiries += [system.post_inquiry(inquiry_body(ws, "chat")) for _ in range(PER_WORKSPACE)]  # fmt: skip
        first_offers = {
            (await assignments.wait_for(lambda a, ws=ws: a.workspace == ws)).inquiry_id
            for ws in agent_of
        }
        assert len(first_offers) == WORKSPACES

        # A second worker joins and takes some partitions; then the first dies hard.
        second_port = free_port()
        system.start_router("router-2", ROUTER_METRICS_PORT=str(second_port))
        system.processes["router"].kill()

        # The agents work through everything; the survivor routes what is left.
        done: set[str] = set()
        while len(done) < len(inquiries):
            offer = await assignments.wait_for(lambda a: a.inquiry_id not in done, timeout_s=60)
            await desk.accept(offer.agent_id, offer.inquiry_id)
            await desk.complete(offer.agent_id, offer.inquiry_id)
            done.add(offer.inquiry_id)

        assert done == set(inquiries)
        # Never offered twice: each inquiry had exactly one reservation (an offer
        # re-published by the new owner carries the same reservation id).
        reservations: dict[str, set[str]] = {}
        for a in assignments.records:
            reservations.setdefault(a.inquiry_id, set()).add(a.reservation_id)
        assert all(len(r) == 1 for r in reservations.values()), reservations
        survivor = f"http://127.0.0.1:{second_port}/metrics"

        async def survivor_owns_all() -> None:
            assert metric_value(survivor, "omniroute_router_partitions_assigned ") == 4

        await eventually(survivor_owns_all)
    finally:
        await assignments.stop()
        await desk.close()
