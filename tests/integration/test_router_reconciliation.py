"""The router never waits for ever: lost task events are made good by asking agent-state.

The router here reads a task-events topic nobody writes to, so it loses every
DECLINED, OFFER_TIMEOUT, ACCEPTED and COMPLETED that agent-state publishes:
the worst case of a lost event. Everything it still does right, it does by
reconciling with agent-state (GetReservation, ListReservations).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from omniroute.codec import timestamp
from omniroute.embedded import EmbeddedBroker
from omniroute.v1 import task_pb2
from tests.support.system import (
    CHAT,
    Assignments,
    Desk,
    System,
    inquiry_body,
    make_agent,
    new_workspace,
    read_assignments,
)

pytestmark = pytest.mark.integration

CONFIG = """
default:
  queues:
    - name: support
      ladder:
        - {after_s: 0, tiers: [1, 2, 3]}
"""


@pytest.fixture(scope="module")
def system(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text(CONFIG)
    system = System(broker, routing_config=str(config), extra_env={"OFFER_TTL_S": "2"})
    blind = {
        "TOPIC_TASK_EVENTS": system.topics["TOPIC_TASK_EVENTS"] + "-never-written",
        "ROUTER_OFFER_GRACE_S": "1",
        "ROUTER_TASK_SILENCE_S": "2",
        "ROUTER_RECONCILE_INTERVAL_S": "3",
    }
    try:
        system.start("agent-state", "ingest")
        system.start_router(**blind)
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    async with read_assignments(system) as tail:
        yield tail


async def test_an_offer_whose_timeout_was_lost_is_offered_again(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    missed, there = f"{ws}-missed", f"{ws}-there"
    await desk.login(make_agent(ws, missed, {"billing": 3}, {CHAT: 1}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert first.agent_id == missed
    await desk.login(make_agent(ws, there, {"billing": 3}, {CHAT: 1}))
    # agent-state times the offer out (and sets the agent AWAY); the router
    # never hears of it, finds it overdue, asks, and routes it again.
    second = await assignments.wait_for(
        lambda a: a.inquiry_id == inquiry_id and a.agent_id == there
    )
    assert second.reservation_id != first.reservation_id


async def test_a_lost_completion_keeps_its_follow_up(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    mine = f"{ws}-mine"
    await desk.login(make_agent(ws, mine, {"billing": 3}, {CHAT: 1}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    await desk.accept(mine, inquiry_id)
    await desk.complete(
        mine,
        inquiry_id,
        resolution=task_pb2.RESOLUTION_FOLLOW_UP,
        follow_up=task_pb2.FollowUp(due_at=timestamp(time.time() + 3), note="call back"),
    )
    again = await assignments.wait_for(
        lambda a: a.inquiry_id == inquiry_id and a.reservation_id != first.reservation_id
    )
    assert again.agent_id == mine
    assert f"follow_up:{mine}" in again.history


async def test_a_lost_escalation_by_a_supervisor_reaches_another_supervisor(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    boss, other = f"{ws}-boss", f"{ws}-other-boss"
    await desk.login(make_agent(ws, boss, {"billing": 3}, {CHAT: 1}, tier=3))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
    await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.agent_id == boss)
    await desk.login(make_agent(ws, other, {"billing": 3}, {CHAT: 1}, tier=3))
    await desk.accept(boss, inquiry_id)
    await desk.complete(
        boss,
        inquiry_id,
        resolution=task_pb2.RESOLUTION_ESCALATED,
        escalation=task_pb2.Escalation(target_skill="billing", reason="second opinion"),
    )
    escalated = await assignments.wait_for(
        lambda a: a.inquiry_id == inquiry_id and a.agent_id == other
    )
    assert escalated.tier == 3
