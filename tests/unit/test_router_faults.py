"""The routing core under faults: clocks that step, lost events, abandons, escalations."""

from __future__ import annotations

from omniroute_router.config import LadderStep, Queue, QueueMatch, WorkspaceConfig
from omniroute_router.decisions import Authority, EndKind, Held, Reconciled, TaskEnd, Withdrawal
from omniroute_router.model import InquiryState
from omniroute_router.routing import WorkspaceRouter
from tests.unit.test_router_routing import T0, agent, inquiry, offers, router

GRACE, SILENCE = 10.0, 600.0


def offered(r: WorkspaceRouter, inquiry_id: str, agent_id: str, expires: float = T0 + 30) -> None:
    r.admit(inquiry(inquiry_id), T0)
    r.offer_made(inquiry_id, agent_id, "r-" + inquiry_id, T0, expires)


# -- clock ---------------------------------------------------------------------


def test_a_clock_stepped_back_neither_raises_nor_reorders() -> None:
    ladder = (LadderStep(after_s=0, tiers=frozenset({1})), LadderStep(after_s=60))
    r = router(WorkspaceConfig(queues=(Queue(name="q", ladder=ladder),)), agent("a1"))
    r.admit(inquiry("q1"), T0)
    # Another worker's clock (or this one, stepped back) is behind queued_at.
    r.housekeeping(T0 - 30)
    assert r.step_index(r.inquiries["q1"], T0 - 30) == 0
    assert offers(r, T0 - 30) == [("q1", "a1")]


# -- escalation ------------------------------------------------------------------


def test_a_supervisor_escalates_to_another_supervisor() -> None:
    r = router(None, agent("boss", tier=3), agent("other-boss", tier=3, idle_since=T0 - 50))
    r.admit(inquiry("q1", min_tier=3), T0)
    assert offers(r) == [("q1", "boss")]
    r.offer_made("q1", "boss", "r1", T0)
    r.accepted("q1", "boss", T0)
    assert r.escalated("q1", "boss", 0, "", "needs a second opinion", T0 + 10)
    assert r.inquiries["q1"].min_tier == 3
    assert offers(r, T0 + 11) == [("q1", "other-boss")]


def test_a_target_tier_out_of_range_never_strands_the_inquiry() -> None:
    r = router(None, agent("rep"), agent("spec", tier=2), agent("boss", tier=3))
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "rep", "r1", T0)
    r.accepted("q1", "rep", T0)
    assert r.escalated("q1", "rep", 99, "", "", T0 + 10)
    assert offers(r, T0 + 11) == [("q1", "spec")]


def test_escalation_to_a_skill_applies_the_target_queues_rules() -> None:
    retention = Queue(
        name="retention",
        match=QueueMatch(skills=frozenset({"retention"})),
        priority=5,
        required_skills=(("retention", 3), ("billing", 2)),
    )
    config = WorkspaceConfig(queues=(retention, Queue(name="general")))
    r = router(
        config,
        agent("rep"),
        agent("novice", tier=2, skills={"retention": 1, "billing": 3}),
        agent("keeper", tier=2, skills={"retention": 4, "billing": 2}, idle_since=T0),
    )
    r.admit(inquiry("q1", priority=1), T0)
    assert r.inquiries["q1"].queue == "general"
    r.offer_made("q1", "rep", "r1", T0)
    r.accepted("q1", "rep", T0)
    assert r.escalated("q1", "rep", 0, "retention", "wants to cancel", T0 + 10)
    moved = r.inquiries["q1"]
    assert (moved.queue, moved.priority) == ("retention", 6)
    assert moved.skills == {"billing": 2, "retention": 3}
    assert offers(r, T0 + 11) == [("q1", "keeper")]


def test_escalation_to_a_named_queue() -> None:
    config = WorkspaceConfig(queues=(Queue(name="general"), Queue(name="complaints", priority=2)))
    r = router(config, agent("rep"), agent("boss", tier=3))
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "rep", "r1", T0)
    r.accepted("q1", "rep", T0)
    r.escalated("q1", "rep", 0, "", "", T0 + 1, target_queue="complaints")
    assert (r.inquiries["q1"].queue, r.inquiries["q1"].priority) == ("complaints", 2)


def test_state_saved_with_a_tier_above_the_top_is_still_routed() -> None:
    r = router(None, agent("boss", tier=3))
    r.admit(inquiry("q1", min_tier=4), T0)
    assert offers(r) == [("q1", "boss")]


# -- follow-up stickiness -----------------------------------------------------------


def test_a_follow_up_declined_by_its_last_agent_goes_to_another_at_once() -> None:
    r = router(WorkspaceConfig(sticky_wait_s=120), agent("last"), agent("other"))
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "last", "r1", T0)
    r.accepted("q1", "last", T0)
    r.follow_up("q1", "last", T0 + 100, T0 + 10)
    assert offers(r, T0 + 100) == [("q1", "last")]
    r.offer_made("q1", "last", "r2", T0 + 100)
    assert r.offer_failed("q1", "last", "r2", "declined", T0 + 101)
    # Well inside the sticky window: the other agent is free and gets it now.
    assert offers(r, T0 + 102) == [("q1", "other")]


# -- abandon -----------------------------------------------------------------------


def test_an_abandon_during_an_open_offer_withdraws_it() -> None:
    r = router(None, agent("a1"))
    offered(r, "q1", "a1")
    assert r.abandoned("q1", T0 + 5)
    assert r.drain_withdrawals() == [Withdrawal("q1", "a1", "r-q1", "abandoned")]
    assert "q1" not in r.inquiries


def test_an_abandon_before_its_inquiry_closes_the_inquiry_when_it_comes() -> None:
    r = router(None, agent("a1"))
    assert r.abandoned("q1", T0)
    assert not r.admit(inquiry("q1"), T0 + 1)
    assert offers(r, T0 + 1) == []
    assert "q1" in r.changed_inquiries  # remembered in the tables, for a new owner too


# -- reconciliation ------------------------------------------------------------------


def test_an_offer_past_its_expiry_and_a_silent_task_are_checked() -> None:
    r = router(None, agent("a1", capacity={"chat": 5}))
    offered(r, "q1", "a1", expires=T0 + 30)
    offered(r, "q2", "a1", expires=T0 + 30)
    r.accepted("q2", "a1", T0 + 5)
    assert r.overdue(T0 + 30 + GRACE - 1, GRACE, SILENCE, 10) == []
    assert r.overdue(T0 + 30 + GRACE, GRACE, SILENCE, 10) == ["q1"]
    assert r.overdue(T0 + 5 + SILENCE, GRACE, SILENCE, 10) == ["q1", "q2"]
    assert r.overdue(T0 + 5 + SILENCE, GRACE, SILENCE, 1) == ["q1"]


def test_an_offer_agent_state_no_longer_holds_goes_back_to_the_queue() -> None:
    r = router(None, agent("a1"), agent("a2"))
    offered(r, "q1", "a1")
    assert r.reconcile("q1", Authority(), T0 + 60) is Reconciled.REQUEUED
    assert r.inquiries["q1"].state is InquiryState.WAITING
    assert offers(r, T0 + 60) == [("q1", "a1")]
    assert r.overdue(T0 + 60, GRACE, SILENCE, 10) == []


def test_an_offer_still_held_is_not_checked_again_before_the_grace_passed() -> None:
    r = router(None, agent("a1"))
    offered(r, "q1", "a1")
    held = Held("a1", "r-q1", accepted=False, expires_at=T0 + 30)
    assert r.reconcile("q1", Authority(held=held), T0 + 45) is Reconciled.AGREED
    assert r.overdue(T0 + 50, GRACE, SILENCE, 10) == []
    assert r.overdue(T0 + 55, GRACE, SILENCE, 10) == ["q1"]


def test_an_acceptance_that_was_lost_is_taken_from_agent_state() -> None:
    r = router(None, agent("a1"))
    offered(r, "q1", "a1")
    held = Held("a1", "r-q1", accepted=True)
    assert r.reconcile("q1", Authority(held=held), T0 + 45) is Reconciled.ADOPTED
    assert r.inquiries["q1"].state is InquiryState.ACCEPTED


def test_a_lost_completion_with_a_follow_up_is_applied_not_lost() -> None:
    r = router(None, agent("a1"))
    offered(r, "q1", "a1")
    r.accepted("q1", "a1", T0 + 1)
    ended = TaskEnd(EndKind.COMPLETED, "a1", "r-q1")
    assert r.reconcile("q1", Authority(ended=ended), T0 + 700) is Reconciled.APPLY_EVENT
    # The adapter applies the event like a consumed one: the follow-up is kept.
    assert r.follow_up("q1", "a1", T0 + 900, T0 + 700)
    assert r.inquiries["q1"].state is InquiryState.SCHEDULED
    # Asked again later, the same completion is not applied twice.
    assert r.reconcile("q1", Authority(ended=ended), T0 + 800) is Reconciled.AGREED


def test_a_lost_escalation_is_applied_once() -> None:
    r = router(None, agent("rep"), agent("spec", tier=2))
    offered(r, "q1", "rep")
    r.accepted("q1", "rep", T0 + 1)
    ended = TaskEnd(EndKind.COMPLETED, "rep", "r-q1")
    assert r.reconcile("q1", Authority(ended=ended), T0 + 700) is Reconciled.APPLY_EVENT
    assert r.escalated("q1", "rep", 0, "", "", T0 + 700)
    assert r.reconcile("q1", Authority(ended=ended), T0 + 701) is Reconciled.AGREED
    assert r.inquiries["q1"].min_tier == 2


def test_an_inquiry_found_by_the_sweep_waits_for_agent_states_word() -> None:
    r = router(None, agent("a1"))
    assert r.admit(inquiry("done"), T0, verify=True)
    assert r.admit(inquiry("lost"), T0, verify=True)
    assert offers(r) == []
    assert sorted(r.overdue(T0, GRACE, SILENCE, 10)) == ["done", "lost"]
    # agent-state says it was completed: applied (it ends), never offered.
    ended = TaskEnd(EndKind.COMPLETED, "a1", "r-old")
    assert r.reconcile("done", Authority(ended=ended), T0) is Reconciled.APPLY_EVENT
    assert r.resolved("done", "a1", T0)
    # agent-state knows nothing of the other: it is offered.
    assert r.reconcile("lost", Authority(), T0) is Reconciled.AGREED
    assert offers(r) == [("lost", "a1")]
    assert not r.is_new("done") and not r.is_new("lost") and r.is_new("other")


def test_the_workspace_picture_is_compared_with_agent_states() -> None:
    r = router(None, agent("a1", capacity={"chat": 5}))
    offered(r, "same", "a1")
    offered(r, "gone", "a1")
    r.admit(inquiry("waiting"), T0)
    r.abandoned("finished", T0)
    held = {
        "same": Held("a1", "r-same", accepted=False),
        "waiting": Held("a1", "r-w", accepted=False),
        "finished": Held("a1", "r-f", accepted=False),
        "never-seen": Held("a1", "r-n", accepted=False),
    }
    assert r.reconcile_workspace(held) == ["gone", "waiting"]
    assert r.drain_withdrawals() == [Withdrawal("finished", "a1", "r-f", "finished")]


def test_a_lost_decline_is_applied_so_the_agent_is_not_offered_it_again_at_once() -> None:
    r = router(None, agent("a1"), agent("a2", idle_since=T0))
    offered(r, "q1", "a1")
    ended = TaskEnd(EndKind.OFFER_FAILED, "a1", "r-q1")
    assert r.reconcile("q1", Authority(ended=ended), T0 + 45) is Reconciled.APPLY_EVENT
    assert r.offer_failed("q1", "a1", "r-q1", "declined", T0 + 45)
    assert offers(r, T0 + 46) == [("q1", "a2")]
    # An older offer's end changes nothing about the current one.
    r.offer_made("q1", "a2", "r2", T0 + 46, T0 + 76)
    held = Held("a2", "r2", accepted=False)
    assert r.reconcile("q1", Authority(held=held, ended=ended), T0 + 50) is Reconciled.AGREED
