"""Transfer to a queue in the routing core: where it goes, what it keeps, who may get it."""

from __future__ import annotations

from omniroute.v1 import agent_state_pb2, task_pb2
from omniroute_router.config import LadderStep, Queue, QueueMatch, WorkspaceConfig
from omniroute_router.convert import authority_from_proto
from omniroute_router.decisions import Authority, EndKind, NoticeKind, Reconciled, TaskEnd
from omniroute_router.model import AgentStatus, InquiryState
from omniroute_router.routing import WorkspaceRouter
from tests.unit.test_router_routing import T0, agent, inquiry, offers, router

BILLING = Queue(name="billing", match=QueueMatch(skills=frozenset({"billing"})))
TECH = Queue(
    name="tech",
    priority=2,
    required_skills=(("tech", 2),),
    ladder=(
        LadderStep(after_s=0, tiers=frozenset({1})),
        LadderStep(after_s=60, tiers=frozenset({1, 2})),
    ),
)
CONFIG = WorkspaceConfig(queues=(BILLING, TECH), service_levels={"chat": 60.0})


def handled(r: WorkspaceRouter, inquiry_id: str, agent_id: str, at: float = T0 + 10) -> None:
    """`agent_id` was offered and accepted the inquiry at `at`."""
    r.offer_made(inquiry_id, agent_id, "r-" + inquiry_id, at)
    r.accepted(inquiry_id, agent_id, at)


def test_it_waits_in_the_target_queue_with_its_arrival_history_and_note() -> None:
    r = router(CONFIG, agent("ana"), agent("tom", skills={"tech": 3}, status=AgentStatus.OFFLINE))
    r.admit(inquiry("q1", arrived_at=T0 - 5), T0)
    handled(r, "q1", "ana")
    r.take_step()
    assert r.transferred_to_queue("q1", "ana", "r-q1", "tech", "router reboots nightly", T0 + 90)
    moved = r.inquiries["q1"]
    assert (moved.state, moved.queue, moved.agent_id) == (InquiryState.WAITING, "tech", "")
    assert moved.arrived_at == T0 - 5  # its place in line and service-level clock
    assert moved.queued_at == T0 + 90  # the new queue's ladder starts now
    # The target queue's skills replace the inquiry's own: the agent re-classified it.
    assert moved.priority == 2 and moved.skills == {"tech": 2}
    assert moved.history == [
        "offered:ana",
        "transferred:ana:tech:router reboots nightly",
    ]
    assert moved.left_queues == ["billing"]
    step = r.take_step()
    assert [(n.kind, n.queue, n.to_queue, n.reason) for n in step.notices] == [
        (NoticeKind.TRANSFERRED, "billing", "tech", "excluded")
    ]
    assert "q1" in step.changes.inquiries


def test_the_new_queue_counts_its_answer_with_the_wait_from_the_first_arrival() -> None:
    r = router(CONFIG, agent("ana"), agent("tom", skills={"tech": 3}))
    r.admit(inquiry("q1"), T0)
    assert offers(r) == [("q1", "ana")]
    handled(r, "q1", "ana")
    r.take_step()
    r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 90)
    assert offers(r, T0 + 91) == [("q1", "tom")]
    handled(r, "q1", "tom", T0 + 100)
    answers = [n for n in r.take_step().notices if n.kind is NoticeKind.ANSWERED]
    assert [(n.queue, n.wait_s) for n in answers] == [("tech", 100.0)]


def test_the_ladder_starts_from_its_first_step_in_the_new_queue() -> None:
    spec = agent("spec", tier=2, skills={"tech": 3, "billing": 1})
    r = router(CONFIG, agent("ana"), spec)
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana", T0 + 500)  # long after the arrival: by arrival it would be on step 1
    r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 600)
    assert r.step_index(r.inquiries["q1"], T0 + 601) == 0
    assert offers(r, T0 + 601) == []  # step 0 takes tier 1 only, and ana is kept from it
    assert offers(r, T0 + 660) == [("q1", "spec")]


def test_never_back_to_the_same_agent_when_another_could_take_it() -> None:
    r = router(
        CONFIG,
        agent("ana", skills={"billing": 3, "tech": 3}),
        # Offline now, but could log in: somebody else could take it.
        agent("tom", skills={"tech": 3}, status=AgentStatus.OFFLINE),
    )
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 20)
    assert offers(r, T0 + 21) == []  # ana is free but excluded; tom is offline
    assert offers(r, T0 + 10_000) == []
    tom = agent("tom", skills={"tech": 3}, version=2)
    r.update_agent(tom)
    assert offers(r, T0 + 10_001) == [("q1", "tom")]


def test_back_to_the_same_agent_when_nobody_else_could_ever_take_it() -> None:
    r = router(
        CONFIG,
        agent("ana", skills={"billing": 3, "tech": 3}),
        agent("low", skills={"tech": 1}),  # below tech's required proficiency at every step
        agent("french", skills={"tech": 3}, languages=("fr",)),  # does not speak English
        agent("boss", tier=3, skills={"tech": 5}),  # tier 3 is on no step of tech's ladder
    )
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 20)
    step = r.take_step()
    assert [n.reason for n in step.notices if n.kind is NoticeKind.TRANSFERRED] == ["sole_fit"]
    assert "ana" not in r.inquiries["q1"].excluded
    assert offers(r, T0 + 21) == [("q1", "ana")]


def test_an_agent_it_was_escalated_away_from_is_nobody_else() -> None:
    r = router(
        CONFIG,
        agent("boss", tier=3, skills={"billing": 3, "tech": 3}),
        agent("chief", tier=3, skills={"billing": 3, "tech": 3}, idle_since=T0),
    )
    r.admit(inquiry("q1", min_tier=3), T0)
    assert offers(r) == [("q1", "boss")]
    handled(r, "q1", "boss")
    r.escalated("q1", "boss", 3, "", "second opinion", T0 + 20)  # boss: never again
    assert offers(r, T0 + 21) == [("q1", "chief")]
    handled(r, "q1", "chief", T0 + 22)
    # boss would fit tech, but is kept from the inquiry for good: nobody else
    # could ever take it, so it may come back to chief.
    r.transferred_to_queue("q1", "chief", "r-q1", "tech", "", T0 + 30)
    assert r.inquiries["q1"].min_tier == 3  # a transfer keeps the tier floor
    assert offers(r, T0 + 31) == [("q1", "chief")]


def test_an_unknown_queue_goes_by_the_match_rules_and_says_so() -> None:
    r = router(CONFIG, agent("ana"), agent("bea"))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    assert r.transferred_to_queue("q1", "ana", "r-q1", "gone", "note", T0 + 20)
    moved = r.inquiries["q1"]
    assert (moved.queue, moved.skills) == ("billing", {"billing": 1})  # nothing re-classified
    assert moved.history[-1] == "transferred:ana:billing:unknown_queue:gone:note"
    assert moved.left_queues == []  # back into its own queue: nothing left
    assert offers(r, T0 + 21) == [("q1", "bea")]


def test_a_redelivered_or_stale_transfer_changes_nothing() -> None:
    r = router(CONFIG, agent("ana"), agent("bea", skills={"tech": 3}))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    assert not r.transferred_to_queue("q1", "bea", "r-x", "tech", "", T0 + 15)  # not bea's
    assert r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 20)
    r.take_step()
    assert not r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 21)
    assert not r.transferred_to_queue("nope", "ana", "r", "tech", "", T0 + 21)
    assert r.take_step().notices == ()
    assert len([h for h in r.inquiries["q1"].history if h.startswith("transferred")]) == 1


def test_a_transfer_redelivered_after_the_agent_got_it_back_changes_nothing() -> None:
    """A worker killed after applying the TRANSFERRED, before committing its offset: the
    next one reads it again, after the sole fit in the target queue took it back by a newer
    reservation. The transfer happened once; the newer task stays with her."""
    r = router(CONFIG, agent("ana", skills={"billing": 3, "tech": 3}))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    assert r.transferred_to_queue("q1", "ana", "r-q1", "tech", "note", T0 + 20)
    assert offers(r, T0 + 21) == [("q1", "ana")]
    r.offer_made("q1", "ana", "r-q1-2", T0 + 21)
    r.accepted("q1", "ana", T0 + 25)
    assert not r.transferred_to_queue("q1", "ana", "r-q1", "tech", "note", T0 + 30)
    again = r.inquiries["q1"]
    assert (again.state, again.agent_id, again.reservation_id) == (
        InquiryState.ACCEPTED,
        "ana",
        "r-q1-2",
    )
    assert [h for h in again.history if h.startswith("transferred")] == [
        "transferred:ana:tech:note"
    ]
    # Her transfer of the newer task is a transfer of its own.
    assert r.transferred_to_queue("q1", "ana", "r-q1-2", "billing", "back", T0 + 40)


def test_a_task_moved_to_another_agent_and_then_to_a_queue_moves_there() -> None:
    """The warm transfer gives the target a reservation of its own, which its transfer to
    a queue names."""
    r = router(CONFIG, agent("ana"), agent("bea"), agent("tom", skills={"tech": 3}))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    assert r.transferred("q1", "bea", "r-bea")
    assert not r.transferred_to_queue("q1", "bea", "r-q1", "tech", "", T0 + 20)  # not hers
    assert r.transferred_to_queue("q1", "bea", "r-bea", "tech", "", T0 + 20)
    assert r.inquiries["q1"].queue == "tech"


def test_overflow_never_sends_it_back_to_the_queue_it_was_transferred_from() -> None:
    r = router(CONFIG, agent("ana"))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 20)
    assert r.inquiries["q1"].left_queues == ["billing"]


def test_a_lost_transfer_is_applied_by_reconciliation() -> None:
    r = router(CONFIG, agent("ana"), agent("tom", skills={"tech": 3}))
    r.admit(inquiry("q1"), T0)
    handled(r, "q1", "ana")
    ended = TaskEnd(EndKind.TRANSFERRED, "ana", "r-q1")
    # agent-state holds nothing and its last event is the transfer: apply it.
    assert r.reconcile("q1", Authority(held=None, ended=ended), T0 + 700) is Reconciled.APPLY_EVENT
    assert r.transferred_to_queue("q1", "ana", "r-q1", "tech", "", T0 + 700)
    assert r.inquiries["q1"].queue == "tech"
    # Checked again later: the transfer is settled, nothing requeued.
    assert r.reconcile("q1", Authority(held=None, ended=ended), T0 + 800) is Reconciled.AGREED
    assert offers(r, T0 + 801) == [("q1", "tom")]


def test_agent_states_last_event_a_transfer_to_a_queue_ends_the_task() -> None:
    event = task_pb2.TaskEvent(
        type=task_pb2.TaskEvent.TYPE_TRANSFERRED,
        agent_id="ana",
        reservation_id="r-q1",
        target_queue="tech",
    )
    answer = agent_state_pb2.GetReservationResponse(last_event=event)
    assert authority_from_proto(answer) == Authority(
        ended=TaskEnd(EndKind.TRANSFERRED, "ana", "r-q1")
    )
    # To an agent it ends nothing: the target's open reservation says who holds it.
    answer.last_event.ClearField("target_queue")
    answer.last_event.target_agent_id = "bea"
    assert authority_from_proto(answer).ended is None
