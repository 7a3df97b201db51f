"""Escalation by time, explicit escalation up the tiers, and follow-ups, end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniroute.codec import timestamp
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, task_pb2
from tests.support.system import (
    CHAT,
    EMAIL,
    Assignments,
    Desk,
    System,
    decisions,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    running,
)

pytestmark = pytest.mark.integration

CONFIG = """
default:
  sticky_wait_s: 60
  queues:
    - name: support
      ladder:
        - {after_s: 0, tiers: [1]}
        - {after_s: 2, tiers: [2]}
        - {after_s: 600, tiers: [3]}
"""


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text(CONFIG)
    # Offers expire after 2 s here, so a missed offer comes back quickly.
    system = System(broker, routing_config=str(config), extra_env={"OFFER_TTL_S": "2"})
    yield from running(system, "agent-state", "router", "ingest")


async def test_a_waiting_inquiry_climbs_the_ladder_to_a_specialist(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-spec", {"billing": 5}, {CHAT: 1}, tier=2))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert offer.agent_id == f"{ws}-spec"
    assert offer.escalation_step == 1  # not on step 0: that one allows representatives only


async def test_explicit_escalation_goes_to_a_specialist_then_a_supervisor(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    rep, spec, boss = f"{ws}-rep", f"{ws}-spec", f"{ws}-boss"
    await desk.login(make_agent(ws, rep, {"billing": 3}, {CHAT: 1}, tier=1))
    await desk.login(make_agent(ws, spec, {"billing": 5}, {CHAT: 1}, tier=2))
    await desk.login(make_agent(ws, boss, {"billing": 5}, {CHAT: 1}, tier=3))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))

    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert first.agent_id == rep
    await desk.accept(rep, inquiry_id)
    await desk.complete(
        rep,
        inquiry_id,
        resolution=task_pb2.RESOLUTION_ESCALATED,
        escalation=task_pb2.Escalation(reason="needs a specialist"),
    )
    second = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.agent_id != rep)
    assert second.agent_id == spec and second.tier == agent_pb2.TIER_SPECIALIST

    await desk.accept(spec, inquiry_id)
    await desk.complete(
        spec,
        inquiry_id,
        resolution=task_pb2.RESOLUTION_ESCALATED,
        escalation=task_pb2.Escalation(
            target_tier=agent_pb2.TIER_SUPERVISOR, reason="refund above authority"
        ),
    )
    third = await assignments.wait_for(
        lambda a: a.inquiry_id == inquiry_id and a.agent_id not in (rep, spec)
    )
    assert third.agent_id == boss and third.tier == agent_pb2.TIER_SUPERVISOR
    # The supervisor sees how it got there.
    assert decisions(third.history) == [
        f"offered:{rep}",
        f"escalated:{rep}:tier2:needs a specialist",
        f"offered:{spec}",
        f"escalated:{spec}:tier3:refund above authority",
    ]
    # The agents' words stay in the audit trail, never in a metric label.
    metrics = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"
    escalations = "omniroute_router_escalations_total{"
    assert metric_value(metrics, escalations + 'reason="agent"') is not None
    for words in ("needs a specialist", "refund above authority"):
        assert metric_value(metrics, escalations + f'reason="{words}"') is None


async def test_a_follow_up_comes_back_to_the_same_agent(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    mine, other = f"{ws}-mine", f"{ws}-other"
    await desk.login(make_agent(ws, mine, {"billing": 3}, {EMAIL: 2}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "email"))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert first.agent_id == mine
    await desk.accept(mine, inquiry_id)
    # Another agent, idle and free, logs in before the follow-up falls due.
    await desk.login(make_agent(ws, other, {"billing": 3}, {EMAIL: 2}))
    await desk.complete(
        mine,
        inquiry_id,
        resolution=task_pb2.RESOLUTION_FOLLOW_UP,
        follow_up=task_pb2.FollowUp(due_at=timestamp(time.time() + 2), note="call back"),
    )
    again = await assignments.wait_for(
        lambda a: a.inquiry_id == inquiry_id and a.reservation_id != first.reservation_id
    )
    assert again.agent_id == mine


async def test_a_missed_offer_comes_back_and_goes_to_another_agent(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    away, there = f"{ws}-away", f"{ws}-there"
    await desk.login(make_agent(ws, away, {"billing": 3}, {CHAT: 1}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat"))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert first.agent_id == away
    # By the time the offer expires the inquiry is on the ladder's second step
    # (specialists), so the other desk is a specialist's.
    await desk.login(make_agent(ws, there, {"billing": 3}, {CHAT: 1}, tier=2))
    # Nobody answers at the first desk: the offer expires and is re-routed.
    second = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.agent_id != away)
    assert second.agent_id == there and second.attempt == 2
    assert decisions(second.history) == [f"offered:{away}", f"offer_timeout:{away}"]
    missed = await desk.agent(away)
    assert (missed.status, missed.away_reason) == (agent_pb2.AGENT_STATUS_AWAY, "missed_offer")
