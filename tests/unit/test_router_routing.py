"""The routing core in isolation: ordering, matching, strategies, ladder, re-routing."""

from __future__ import annotations

import math

from omniroute_router.config import LadderStep, PriorityRule, Queue, QueueMatch, WorkspaceConfig
from omniroute_router.model import AgentStatus, AgentView, InquiryState, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter

T0 = 1_000_000.0


def agent(agent_id: str, **kw: object) -> AgentView:
    defaults: dict[str, object] = {
        "workspace": "acme",
        "skills": {"billing": 3},
        "languages": ("en",),
        "tier": 1,
        "capacity": {"chat": 2, "voice": 1, "email": 5},
        "load": {},
        "status": AgentStatus.AVAILABLE,
        "idle_since": T0 - 100,
        "version": 1,
    }
    defaults.update(kw)
    return AgentView(id=agent_id, **defaults)  # type: ignore[arg-type]


def inquiry(inquiry_id: str, **kw: object) -> QueuedInquiry:
    defaults: dict[str, object] = {
        "workspace": "acme",
        "channel": "chat",
        "queue": "",
        "arrived_at": T0,
        "skills": {"billing": 1},
        "language": "en",
    }
    defaults.update(kw)
    return QueuedInquiry(id=inquiry_id, **defaults)  # type: ignore[arg-type]


def router(config: WorkspaceConfig | None = None, *agents: AgentView) -> WorkspaceRouter:
    r = WorkspaceRouter("acme", config or WorkspaceConfig())
    for a in agents:
        r.update_agent(a)
    return r


def offers(r: WorkspaceRouter, now: float = T0) -> list[tuple[str, str]]:
    return [(o.inquiry_id, o.agent_id) for o in r.plan(now)]


def test_an_inquiry_goes_to_an_agent_with_the_skill_and_the_channel() -> None:
    r = router(None, agent("sales", skills={"sales": 5}), agent("billing"))
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "billing")]


def test_no_offer_without_a_free_slot_on_the_inquiry_channel() -> None:
    r = router(None, agent("a1", capacity={"voice": 1}, load={"voice": 1}))
    r.admit(inquiry("q1", channel="voice"), T0)
    assert offers(r) == []


def test_capacity_counts_within_one_plan() -> None:
    r = router(None, agent("a1", capacity={"chat": 2}))
    for i in range(3):
        r.admit(inquiry(f"q{i}", arrived_at=T0 + i), T0 + i)
    assert offers(r, T0 + 5) == [("q0", "a1"), ("q1", "a1")]


def test_total_capacity_limits_across_channels() -> None:
    r = router(None, agent("a1", capacity={"chat": 3, "email": 3}, total_capacity=2))
    r.admit(inquiry("q1"), T0)
    r.admit(inquiry("q2", channel="email", arrived_at=T0 + 1), T0)
    r.admit(inquiry("q3", arrived_at=T0 + 2), T0)
    assert [i for i, _ in offers(r, T0 + 3)] == ["q1", "q2"]


def test_unavailable_agents_get_nothing() -> None:
    for status in (AgentStatus.AWAY, AgentStatus.OFFLINE, AgentStatus.WRAP_UP):
        r = router(None, agent("a1", status=status))
        r.admit(inquiry("q1"), T0)
        assert offers(r) == []


def test_language_must_match_by_primary_subtag() -> None:
    r = router(None, agent("en", languages=("en",)), agent("es", languages=("es-MX",)))
    r.admit(inquiry("q1", language="es"), T0)
    assert offers(r) == [("q1", "es")]


def test_higher_priority_first_then_longest_waiting() -> None:
    r = router(None, agent("a1", capacity={"chat": 1}))
    r.admit(inquiry("old", arrived_at=T0), T0)
    r.admit(inquiry("urgent", arrived_at=T0 + 10, priority=5), T0 + 10)
    r.admit(inquiry("older", arrived_at=T0 - 5), T0 + 10)
    order = [i.id for i in r.waiting_in_order(T0 + 10)]
    assert order == ["urgent", "older", "old"]


def test_waiting_inquiries_gain_priority_with_age_so_nothing_starves() -> None:
    r = router(WorkspaceConfig(aging_s=10))
    r.admit(inquiry("patient", arrived_at=T0), T0)
    r.admit(inquiry("urgent", arrived_at=T0 + 5, priority=3), T0 + 5)
    assert next(r.waiting_in_order(T0 + 5)).id == "urgent"
    # New urgent work keeps arriving; after 40 s the patient one (0 + 4) goes first.
    r.admit(inquiry("newer", arrived_at=T0 + 40, priority=3), T0 + 40)
    r.abandoned("urgent", T0 + 40)
    assert [i.id for i in r.waiting_in_order(T0 + 40)] == ["patient", "newer"]


def test_priority_rules_lift_vip_customers_and_complaints() -> None:
    config = WorkspaceConfig(
        priority_rules=(
            PriorityRule(boost=3, segments=frozenset({"vip"})),
            PriorityRule(boost=2, kinds=frozenset({"complaint"})),
        )
    )
    r = router(config)
    r.admit(inquiry("plain", arrived_at=T0 - 50), T0)
    r.admit(inquiry("vip", segment="vip"), T0)
    r.admit(inquiry("complaint", kind="complaint"), T0)
    assert [i.id for i in r.waiting_in_order(T0)] == ["vip", "complaint", "plain"]


def test_a_duplicate_inquiry_is_not_queued_twice() -> None:
    r = router()
    assert r.admit(inquiry("q1"), T0)
    assert not r.admit(inquiry("q1"), T0 + 1)
    r.inquiries["q1"].state = InquiryState.OFFERED
    r.inquiries["q1"].agent_id = "a1"
    r.resolved("q1", "a1", T0 + 2)
    assert not r.admit(inquiry("q1"), T0 + 3)


def test_longest_idle_strategy_picks_the_agent_idle_longest() -> None:
    r = router(
        None,
        agent("recent", idle_since=T0 - 10),
        agent("longest", idle_since=T0 - 500),
        agent("busy", idle_since=T0 - 900, load={"chat": 1}),
    )
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "longest")]


def test_least_occupied_strategy() -> None:
    config = WorkspaceConfig(queues=(Queue(name="chat", strategy="least_occupied"),))
    r = router(
        config,
        agent("half", capacity={"chat": 2}, load={"chat": 1}, idle_since=0),
        agent("third", capacity={"chat": 3}, load={"chat": 1}, idle_since=0),
    )
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "third")]


def test_highest_proficiency_strategy_and_deterministic_ties() -> None:
    config = WorkspaceConfig(queues=(Queue(name="b", strategy="highest_proficiency"),))
    r = router(config, agent("b3", skills={"billing": 3}), agent("b5", skills={"billing": 5}))
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "b5")]
    tie = router(config, agent("zed", skills={"billing": 5}), agent("amy", skills={"billing": 5}))
    tie.admit(inquiry("q1"), T0)
    assert offers(tie) == [("q1", "amy")]


def test_queues_take_inquiries_by_their_match_and_add_required_skills() -> None:
    config = WorkspaceConfig(
        queues=(
            Queue(
                name="voice-es",
                match=QueueMatch(channels=frozenset({"voice"}), languages=frozenset({"es"})),
            ),
            Queue(
                name="billing",
                match=QueueMatch(skills=frozenset({"billing"})),
                required_skills=(("billing", 2),),
            ),
            Queue(name="general"),
        )
    )
    r = router(config)
    r.admit(inquiry("a", channel="voice", language="es-ES", skills={}), T0)
    r.admit(inquiry("b"), T0)
    r.admit(inquiry("c", skills={}), T0)
    assert [r.inquiries[i].queue for i in "abc"] == ["voice-es", "billing", "general"]
    assert r.inquiries["b"].skills == {"billing": 2}


LADDER = (
    LadderStep(after_s=0, tiers=frozenset({1}), min_proficiency=3),
    LadderStep(after_s=30, tiers=frozenset({1}), min_proficiency=1),
    LadderStep(after_s=90, tiers=frozenset({1, 2})),
    LadderStep(after_s=300, tiers=frozenset({3})),
)


def test_the_ladder_relaxes_requirements_as_the_inquiry_waits() -> None:
    config = WorkspaceConfig(queues=(Queue(name="billing", ladder=LADDER),))
    r = router(
        config,
        agent("novice", skills={"billing": 1}),
        agent("specialist", skills={"billing": 5}, tier=2),
        agent("boss", skills={"billing": 5}, tier=3),
    )
    r.admit(inquiry("q1", skills={"billing": 4}), T0)
    assert offers(r, T0) == []  # step 0: tier 1 with proficiency >= 3: nobody
    assert offers(r, T0 + 30) == [("q1", "novice")]  # step 1: proficiency >= 1
    r.update_agent(agent("novice", skills={"billing": 1}, status=AgentStatus.AWAY, version=2))
    assert offers(r, T0 + 60) == []
    assert offers(r, T0 + 90) == [("q1", "specialist")]  # step 2: tiers 1-2
    r.update_agent(
        agent("specialist", skills={"billing": 5}, tier=2, status=AgentStatus.AWAY, version=2)
    )
    assert offers(r, T0 + 299) == []
    assert offers(r, T0 + 300) == [("q1", "boss")]  # step 3: supervisors


def test_declined_offer_goes_to_the_next_agent_not_the_same_one() -> None:
    r = router(None, agent("a1", idle_since=T0 - 900), agent("a2", idle_since=T0 - 10))
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "a1")]
    r.offer_made("q1", "a1", "res-1", T0)
    assert offers(r) == []  # offered: not proposed again
    assert r.offer_failed("q1", "a1", "res-1", "declined", T0 + 5)
    assert offers(r, T0 + 5) == [("q1", "a2")]
    assert r.inquiries["q1"].history == ["offered:a1", "declined:a1"]


def test_a_stale_offer_failure_is_ignored() -> None:
    r = router(None, agent("a1"))
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "a1", "res-2", T0)
    assert not r.offer_failed("q1", "a1", "res-1", "offer_timeout", T0)
    assert not r.offer_failed("q1", "other", "", "declined", T0)
    assert r.inquiries["q1"].state is InquiryState.OFFERED


def test_the_same_agent_may_be_offered_again_after_the_block_window() -> None:
    r = router(WorkspaceConfig(reoffer_block_s=60), agent("a1"))
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "a1", "r", T0)
    r.offer_failed("q1", "a1", "r", "offer_timeout", T0)
    assert offers(r, T0 + 59) == []
    assert offers(r, T0 + 61) == [("q1", "a1")]


def test_repeated_failed_offers_escalate_one_ladder_step() -> None:
    config = WorkspaceConfig(queues=(Queue(name="q", ladder=LADDER),), max_failed_offers=2)
    r = router(
        config, *(agent(f"a{i}", skills={"billing": 3}) for i in range(3)), agent("s", tier=2)
    )
    r.admit(inquiry("q1", skills={"billing": 3}), T0)
    for n in range(2):
        ((_, agent_id),) = offers(r, T0 + n)
        r.offer_made("q1", agent_id, f"r{n}", T0 + n)
        r.offer_failed("q1", agent_id, f"r{n}", "declined", T0 + n)
    assert r.step_index(r.inquiries["q1"], T0 + 2) == 1
    notices = r.drain_notices()
    assert [(n.kind, n.step, n.reason) for n in notices] == [("escalated", 1, "failed_offers")]


def test_explicit_escalation_goes_to_a_higher_tier_and_never_back() -> None:
    r = router(
        None,
        agent("rep"),
        agent("spec", tier=2, skills={"billing": 4, "retention": 4}),
        agent("boss", tier=3, skills={"billing": 5, "retention": 5}),
    )
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "rep", "r1", T0)
    r.accepted("q1", "rep", T0 + 1)
    assert r.escalated("q1", "rep", 0, "retention", "needs a retention offer", T0 + 60)
    assert offers(r, T0 + 60) == [("q1", "spec")]
    r.offer_made("q1", "spec", "r2", T0 + 60)
    r.accepted("q1", "spec", T0 + 61)
    assert r.escalated("q1", "spec", 3, "", "refund above authority", T0 + 120)
    assert offers(r, T0 + 120) == [("q1", "boss")]
    assert r.inquiries["q1"].excluded["rep"] == math.inf


def test_follow_up_returns_at_its_due_time_to_the_same_agent_first() -> None:
    r = router(
        WorkspaceConfig(sticky_wait_s=60),
        agent("mine", idle_since=T0),
        agent("other", idle_since=T0 - 999),
    )
    r.admit(inquiry("q1"), T0)
    r.offer_made("q1", "other", "r1", T0)
    r.accepted("q1", "other", T0)
    r.update_agent(agent("mine", idle_since=T0 - 9999, version=2))
    assert r.follow_up("q1", "other", T0 + 3600, T0 + 100)
    assert offers(r, T0 + 3599) == []  # not yet due
    r.update_agent(agent("other", status=AgentStatus.AWAY, version=2))
    assert offers(r, T0 + 3600) == []  # due, waits for its agent
    r.update_agent(agent("other", idle_since=T0 + 3600, version=3))
    assert offers(r, T0 + 3610) == [("q1", "other")]  # sticky beats the longer idle 'mine'
    r.update_agent(agent("other", status=AgentStatus.AWAY, version=4))
    assert offers(r, T0 + 3661) == [("q1", "mine")]  # after sticky_wait_s: anyone qualified


def test_replies_in_a_thread_prefer_the_last_agent() -> None:
    r = router(None, agent("first", idle_since=T0), agent("idle", idle_since=T0 - 999))
    r.admit(inquiry("m1", channel="email", thread_id="t-1"), T0)
    r.offer_made("m1", "first", "r", T0)
    r.accepted("m1", "first", T0 + 1)
    r.resolved("m1", "first", T0 + 2)
    r.admit(inquiry("m2", channel="email", thread_id="t-1", arrived_at=T0 + 10), T0 + 10)
    assert offers(r, T0 + 10) == [("m2", "first")]


def test_abandoned_inquiries_leave_the_queue_but_accepted_ones_stay() -> None:
    r = router(None, agent("a1"))
    r.admit(inquiry("gone"), T0)
    r.admit(inquiry("served"), T0)
    r.offer_made("served", "a1", "r", T0)
    r.accepted("served", "a1", T0)
    assert r.abandoned("gone", T0 + 5)
    assert not r.abandoned("served", T0 + 5)
    assert "gone" not in r.inquiries and "served" in r.inquiries


def test_accepted_reports_the_wait_once() -> None:
    r = router(None, agent("a1"))
    r.admit(inquiry("q1", arrived_at=T0), T0)
    r.offer_made("q1", "a1", "r", T0 + 4)
    assert r.accepted("q1", "a1", T0 + 7) == 7
    assert r.accepted("q1", "a1", T0 + 8) is None


def test_older_agent_pictures_are_ignored() -> None:
    r = router(None, agent("a1", version=5))
    assert not r.update_agent(agent("a1", version=4, status=AgentStatus.OFFLINE))
    assert r.agents["a1"].status is AgentStatus.AVAILABLE


def test_state_round_trips_through_plain_dicts() -> None:
    q = inquiry("q1", excluded={"a": 5.0}, history=["x"])
    assert QueuedInquiry.from_dict(q.to_dict()) == q
    a = agent("a1")
    assert AgentView.from_dict(a.to_dict()) == a


def test_housekeeping_counts_each_ladder_step_reached_once() -> None:
    r = router(WorkspaceConfig(queues=(Queue(name="billing", ladder=LADDER),)))
    r.admit(inquiry("q1"), T0)
    r.housekeeping(T0 + 31)
    r.housekeeping(T0 + 32)
    r.housekeeping(T0 + 301)  # straight from step 1 to step 3
    assert [(n.kind, n.step, n.reason) for n in r.drain_notices()] == [
        ("escalated", 1, "wait"),
        ("escalated", 3, "wait"),
    ]


def test_inquiries_nobody_fits_do_not_hide_one_behind_them_that_fits() -> None:
    r = router(None, agent("a1", skills={"billing": 3}, capacity={"chat": 1, "voice": 1}))
    for i in range(3):
        r.admit(inquiry(f"legal-{i}", skills={"legal": 1}, arrived_at=T0 + i), T0)
    r.admit(inquiry("voice-call", channel="voice", arrived_at=T0 + 5), T0)
    r.admit(inquiry("chat", arrived_at=T0 + 6), T0)
    assert offers(r, T0 + 10) == [("voice-call", "a1"), ("chat", "a1")]


def test_an_agent_busy_on_one_channel_is_still_offered_another() -> None:
    r = router(None, agent("a1", capacity={"voice": 1, "email": 2}, load={"voice": 1}))
    r.admit(inquiry("call", channel="voice"), T0)
    r.admit(inquiry("mail", channel="email", arrived_at=T0 + 1), T0)
    assert offers(r, T0 + 2) == [("mail", "a1")]


def test_a_plan_for_what_changed_takes_new_inquiries_and_agents_with_slots_changed() -> None:
    r = router(None, agent("a1", capacity={"chat": 1}, load={"chat": 1}), agent("a2"))
    r.plan(T0)
    r.admit(inquiry("q1", skills={"sales": 1}), T0)  # fits nobody
    assert r.plan_changed(T0) == []
    r.admit(inquiry("q2"), T0)
    assert [(o.inquiry_id, o.agent_id) for o in r.plan_changed(T0)] == [("q2", "a2")]
    r.offer_made("q2", "a2", "r1", T0)
    # a1 accepted an earlier task: a newer record, but nothing that matters for fitting.
    r.update_agent(agent("a1", capacity={"chat": 1}, load={"chat": 1}, version=2))
    assert r.plan_changed(T0) == []
    # a1 frees its slot and learns sales: q1, waiting, now fits.
    freed = agent("a1", capacity={"chat": 1}, skills={"sales": 2}, version=3)
    r.update_agent(freed)
    assert [(o.inquiry_id, o.agent_id) for o in r.plan_changed(T0)] == [("q1", "a1")]
    assert r.plan_changed(T0) == []  # planned: nothing changed since
