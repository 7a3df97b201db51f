"""The roster's rules for a loop under faults: scopes, fences, clocks, retries, expiry.

Plain rules, time passed in: `now` is the wall clock (what the wire shows),
`mono` the monotonic clock (what durations are measured on).
"""

from __future__ import annotations

import itertools

import pytest

from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.retries import RequestLog
from omniroute_agent_state.roster import (
    MAX_VERSION,
    Fenced,
    InvalidRequest,
    NotPossible,
    Policy,
    Roster,
)

CHAT, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
OFFLINE, AVAILABLE, AWAY = (
    agent_pb2.AGENT_STATUS_OFFLINE,
    agent_pb2.AGENT_STATUS_AVAILABLE,
    agent_pb2.AGENT_STATUS_AWAY,
)
TaskEvent = task_pb2.TaskEvent
T0 = 1_700_000_000.0  # wall clock
M0 = 5_000.0  # monotonic clock


def roster(**policy: object) -> Roster:
    counter = itertools.count(1)
    return Roster(Policy(**policy), new_id=lambda: f"id-{next(counter)}")  # type: ignore[arg-type]


def ready(r: Roster, agent_id: str, workspace: str = "ws", tier: int = 1, **capacity: int) -> None:
    channels = {"chat": CHAT, "email": EMAIL}
    profile = agent_pb2.Agent(
        id=agent_id,
        workspace=workspace,
        tier=tier,  # type: ignore[arg-type]
        skills={"billing": 3},
        capacities=[
            agent_pb2.ChannelCapacity(channel=channels[name], capacity=n)  # type: ignore[arg-type]
            for name, n in (capacity or {"chat": 3}).items()
        ],
    )
    r.upsert(profile, "admin", T0, M0)
    r.set_status(agent_id, AVAILABLE, "", agent_id, T0, M0)


def types(events: list[TaskEvent]) -> list[tuple[str, str, str]]:
    return [(TaskEvent.Type.Name(e.type), e.inquiry_id, e.reason) for e in events]


# -- identity: inquiry keys are scoped by workspace ------------------------------


def test_the_same_inquiry_id_in_two_workspaces_gets_two_reservations() -> None:
    r = roster()
    ready(r, "ann", "acme")
    ready(r, "bob", "globex")
    mine, _, _, _ = r.reserve("ann", "inq-1", CHAT, "acme", T0, M0)
    theirs, holder, already, changes = r.reserve("bob", "inq-1", CHAT, "globex", T0, M0)
    assert not already and holder.id == "bob"
    assert theirs.reservation_id != mine.reservation_id
    assert (theirs.workspace, mine.workspace) == ("globex", "acme")
    assert [e.workspace for e in changes.task_events] == ["globex"]
    # Each workspace sees and acts on its own.
    assert r.reservation("acme", "inq-1")[1].id == "ann"  # type: ignore[index]
    withdrawn, _, _ = r.withdraw("globex", "inq-1", "abandoned", T0, M0)
    assert withdrawn is not None and withdrawn.agent_id == "bob"
    assert r.reservation("acme", "inq-1") is not None
    assert r.reservation("globex", "inq-1") is None


# -- fencing ---------------------------------------------------------------------


def fence(generation: int, partition: int = 0) -> agent_state_pb2.RouterFence:
    return agent_state_pb2.RouterFence(group="router", partition=partition, generation=generation)


def test_an_older_router_generation_is_fenced_per_partition() -> None:
    r = roster()
    assert r.fence(fence(3)).fences == [fence(3)]  # new: journaled
    assert not r.fence(fence(3))  # the same owner again: nothing to journal
    with pytest.raises(Fenced, match=r"generation 2 .* older than 3"):
        r.fence(fence(2))
    assert r.fence(fence(0, partition=1)).fences  # another partition: its own generation
    assert r.fence(fence(7)).fences == [fence(7)]
    with pytest.raises(Fenced):
        r.fence(fence(3))
    assert not r.fence(None) and not r.fence(agent_state_pb2.RouterFence())  # not a router
    with pytest.raises(InvalidRequest, match=r"fence\.generation"):
        r.fence(fence(-1))


def test_fences_survive_a_restore() -> None:
    r = roster()
    journaled = r.fence(fence(4)).fences + r.fence(fence(9, partition=2)).fences
    fresh = roster()
    fresh.restore([], T0, M0, fences=[*journaled, fence(1)])
    with pytest.raises(Fenced):
        fresh.fence(fence(3))
    with pytest.raises(Fenced):
        fresh.fence(fence(8, partition=2))
    assert not fresh.fence(fence(4))


# -- withdrawals -------------------------------------------------------------------


def test_withdraw_takes_back_an_open_offer_only() -> None:
    r = roster()
    ready(r, "ann")
    r.reserve("ann", "open", CHAT, "ws", T0, M0)
    r.reserve("ann", "taken", CHAT, "ws", T0, M0)
    r.accept("ann", "taken", T0, M0)
    withdrawn, agent, changes = r.withdraw("ws", "open", "abandoned", T0 + 1, M0 + 1)
    assert withdrawn is not None and withdrawn.inquiry_id == "open"
    assert agent is not None and [x.inquiry_id for x in agent.reservations] == ["taken"]
    assert types(changes.task_events) == [("TYPE_WITHDRAWN", "open", "abandoned")]
    assert r.last_event("ws", "open").type == TaskEvent.TYPE_WITHDRAWN  # type: ignore[union-attr]
    # An accepted task is not an offer; nothing there: nothing to do.
    assert r.withdraw("ws", "taken", "abandoned", T0, M0)[0] is None
    assert r.withdraw("ws", "open", "abandoned", T0, M0) == (None, None, r.withdraw("ws", "x", "", T0, M0)[2])  # fmt: skip
    # The withdrawn offer no longer expires.
    assert not r.expire(T0 + 100, M0 + 100).changes.task_events


# -- monotonic timers --------------------------------------------------------------


def test_a_wall_clock_step_neither_expires_offers_early_nor_crashes() -> None:
    r = roster(offer_ttl_s=20.0, session_timeout_s=30.0, wrap_up_by_channel={"chat": 10.0})
    ready(r, "ann")
    r.heartbeat("ann", T0, M0)
    reservation = r.reserve("ann", "a", CHAT, "ws", T0, M0)[0]
    assert reservation.expires_at.seconds == int(T0 + 20)  # the wire shows wall-clock time
    # The wall clock jumps a day forward, then a day back: 5 s have passed.
    assert not r.expire(T0 + 86_400, M0 + 5).changes
    assert not r.expire(T0 - 86_400, M0 + 5).changes
    assert r.reservation("ws", "a") is not None and r.get("ann").session_active
    # Measured on the monotonic clock, the offer times out after its 20 s.
    expired = r.expire(T0 - 86_400 + 20, M0 + 20).changes
    assert types(expired.task_events)[0] == ("TYPE_OFFER_TIMEOUT", "a", "")
    assert expired.task_events[0].occurred_at.seconds == int(T0 - 86_400 + 20)


def test_sessions_and_wrap_ups_are_timed_on_the_monotonic_clock() -> None:
    r = roster(session_timeout_s=30.0, wrap_up_by_channel={"chat": 10.0})
    ready(r, "ann")
    r.reserve("ann", "a", CHAT, "ws", T0, M0)
    r.accept("ann", "a", T0, M0)
    r.complete("ann", "a", TaskEvent(), T0, M0)
    assert r.get("ann").status == agent_pb2.AGENT_STATUS_WRAP_UP
    r.heartbeat("ann", T0, M0)
    assert not r.expire(T0 + 3_600, M0 + 9).changes  # wall clock a hour on; 9 s really
    assert r.get("ann").status == agent_pb2.AGENT_STATUS_WRAP_UP
    r.expire(T0 + 3_600, M0 + 10)
    assert r.get("ann").status == AVAILABLE
    r.expire(T0, M0 + 30)
    assert r.get("ann").status == OFFLINE


def test_restore_rebuilds_timers_at_most_their_full_length_away() -> None:
    r = roster(offer_ttl_s=20.0)
    ready(r, "ann")
    r.reserve("ann", "a", CHAT, "ws", T0, M0)
    snapshot = agent_pb2.Agent()
    snapshot.CopyFrom(r.get("ann"))
    # Restarted on a wall clock stepped back an hour: the offer still ends within 20 s.
    fresh = roster(offer_ttl_s=20.0)
    fresh.restore([snapshot], T0 - 3_600, 100.0)
    assert not fresh.expire(T0 - 3_600, 119.0).changes.task_events
    assert fresh.expire(T0 - 3_600, 120.0).changes.task_events


# -- a missed offer ------------------------------------------------------------------


def test_a_missed_offer_withdraws_the_agents_other_open_offers() -> None:
    r = roster(offer_ttl_s=20.0, offer_ttl_by_channel={"email": 300.0})
    ready(r, "ann", chat=3, email=5)
    r.reserve("ann", "chat-1", CHAT, "ws", T0, M0)
    r.reserve("ann", "mail-1", EMAIL, "ws", T0, M0)
    r.reserve("ann", "chat-2", CHAT, "ws", T0, M0)
    r.accept("ann", "chat-2", T0, M0)
    changes = r.expire(T0 + 20, M0 + 20).changes
    assert types(changes.task_events) == [
        ("TYPE_OFFER_TIMEOUT", "chat-1", ""),
        ("TYPE_WITHDRAWN", "mail-1", "missed_offer"),
    ]
    ann = r.get("ann")
    assert (ann.status, ann.away_reason) == (AWAY, "missed_offer")
    assert [x.inquiry_id for x in ann.reservations] == ["chat-2"]  # accepted work stays
    assert r.reservation("ws", "mail-1") is None


# -- escalation ----------------------------------------------------------------------


def escalate(r: Roster, agent_id: str, inquiry: str, **escalation: object) -> TaskEvent:
    r.reserve(agent_id, inquiry, CHAT, "ws", T0, M0)
    r.accept(agent_id, inquiry, T0, M0)
    outcome = TaskEvent(
        resolution=task_pb2.RESOLUTION_ESCALATED,
        escalation=task_pb2.Escalation(**escalation),  # type: ignore[arg-type]
    )
    return r.complete(agent_id, inquiry, outcome, T0, M0).task_events[-1]


def test_escalation_targets_are_validated_and_a_supervisor_can_escalate() -> None:
    r = roster()
    ready(r, "rep", tier=1)
    ready(r, "sup", tier=3)
    with pytest.raises(InvalidRequest, match=r"escalation\.target_tier: unknown tier 99"):
        escalate(r, "rep", "a", target_tier=99, reason="stuck")
    with pytest.raises(InvalidRequest, match=r"escalation\.target_tier must be above"):
        escalate(r, "rep", "b", target_tier=1)
    assert (
        escalate(r, "rep", "c", target_tier=2, target_skill="billing").escalation.target_tier == 2
    )
    # A supervisor escalates sideways: to another supervisor with a skill, or to a queue.
    with pytest.raises(
        InvalidRequest, match=r"escalation\.target_skill or escalation\.target_queue"
    ):
        escalate(r, "sup", "d", reason="no authority")
    with pytest.raises(InvalidRequest, match=r"escalation\.target_tier: a supervisor"):
        escalate(r, "sup", "e", target_tier=2, target_skill="billing")
    to_skill = escalate(r, "sup", "f", target_tier=3, target_skill="legal")
    assert to_skill.escalation.target_skill == "legal"
    to_queue = escalate(r, "sup", "g", target_queue="complaints")
    assert to_queue.escalation.target_queue == "complaints"


# -- retries by the natural key ---------------------------------------------------


def test_retried_calls_change_nothing_and_keep_their_answer() -> None:
    r = roster()
    ready(r, "ann")
    ready(r, "bob")
    first = r.reserve("ann", "a", CHAT, "ws", T0, M0)[0]
    again, _, already, changes = r.reserve("ann", "a", CHAT, "ws", T0, M0)
    assert already and not changes and again.reservation_id == first.reservation_id
    r.accept("ann", "a", T0, M0)
    assert not r.accept("ann", "a", T0, M0)
    moved, changes = r.transfer("ann", "a", "bob", "", T0, M0)
    retried, nothing = r.transfer("ann", "a", "bob", "", T0, M0)
    assert not nothing and retried.reservation_id == moved.reservation_id
    with pytest.raises(NotPossible):  # to someone else it is not a retry
        r.transfer("ann", "a", "cal", "", T0, M0)
    r.reserve("ann", "b", CHAT, "ws", T0, M0)
    assert r.decline("ann", "b", "busy", T0, M0)
    assert not r.decline("ann", "b", "busy", T0, M0)
    # The router has offered it to bob meanwhile: ann's retry is still a retry.
    r.reserve("bob", "b", CHAT, "ws", T0, M0)
    assert not r.decline("ann", "b", "busy", T0, M0)
    assert r.reservation("ws", "b")[1].id == "bob"  # type: ignore[index]
    assert not r.set_status("ann", AVAILABLE, "", "ann", T0, M0)  # already available


def test_a_stale_reservation_id_is_refused() -> None:
    r = roster()
    ready(r, "ann")
    first = r.reserve("ann", "a", CHAT, "ws", T0, M0)[0]
    r.decline("ann", "a", "", T0, M0)
    r.reserve("ann", "a", CHAT, "ws", T0, M0)
    with pytest.raises(NotPossible, match="reservation_id"):
        r.accept("ann", "a", T0, M0, reservation_id=first.reservation_id)


def test_last_events_are_kept_for_the_retention_period() -> None:
    r = roster(event_retention_s=60.0)
    ready(r, "ann")
    r.reserve("ann", "a", CHAT, "ws", T0, M0)
    r.decline("ann", "a", "", T0, M0)
    r.expire(T0, M0 + 59)
    assert r.last_event("ws", "a").type == TaskEvent.TYPE_DECLINED  # type: ignore[union-attr]
    r.expire(T0, M0 + 60)
    assert r.last_event("ws", "a") is None
    # Restored from the task-events topic, by the age of each event.
    event = TaskEvent(type=TaskEvent.TYPE_COMPLETED, workspace="ws", inquiry_id="b")
    event.occurred_at.FromSeconds(int(T0 - 30))
    old = TaskEvent(type=TaskEvent.TYPE_COMPLETED, workspace="ws", inquiry_id="c")
    old.occurred_at.FromSeconds(int(T0 - 61))
    fresh = roster(event_retention_s=60.0)
    fresh.restore([], T0, M0, task_events=[event, old])
    assert fresh.last_event("ws", "b") == event and fresh.last_event("ws", "c") is None


# -- expiry keeps going ------------------------------------------------------------


def test_restore_refuses_a_version_that_would_overflow() -> None:
    r = roster()
    forged = agent_pb2.Agent(id="eve", workspace="ws", tier=1, version=2**63 - 1)
    honest = agent_pb2.Agent(id="eve", workspace="ws", tier=1, version=3)
    refused = r.restore([honest, forged], T0, M0)
    assert r.get("eve").version == 3 and len(refused) == 1 and "eve" in refused[0]
    assert MAX_VERSION < 2**63 - 1


def test_a_failing_agent_never_stops_expiry_for_the_others() -> None:
    r = roster(offer_ttl_s=20.0)
    for name in ("ann", "bob", "cal"):
        ready(r, name)
        r.reserve(name, f"inq-{name}", CHAT, "ws", T0, M0)
    r.get("bob").version = 2**63 - 1  # a record the next change would overflow
    before = agent_pb2.Agent()
    before.CopyFrom(r.get("bob"))
    result = r.expire(T0 + 20, M0 + 20)
    assert sorted(result.failed) == ["bob"]
    assert sorted(e.agent_id for e in result.changes.task_events) == ["ann", "cal"]
    assert r.get("bob") == before  # rolled back whole: still holds its offer and slot
    assert r.reservation("ws", "inq-bob") is not None
    assert r.reservation("ws", "inq-ann") is None


# -- request ids ---------------------------------------------------------------------


def test_a_request_id_gets_the_first_answer_until_it_is_forgotten() -> None:
    log = RequestLog(ttl_s=60.0, max_entries=2)
    request = agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="a", request_id="r1")
    assert log.find("AcceptTask", request, 0.0) is None
    log.remember("AcceptTask", request, agent_pb2.Agent(id="ann", version=4), 7, 0.0)
    found = log.find("AcceptTask", request, 59.0)
    assert found is not None and (found.answer.version, found.seq) == (4, 7)  # type: ignore[attr-defined]
    assert log.find("DeclineTask", request, 1.0) is None  # scoped by method
    other = agent_state_pb2.TaskRequest(agent_id="bob", inquiry_id="a", request_id="r1")
    with pytest.raises(InvalidRequest, match="request_id 'r1' was already used"):
        log.find("AcceptTask", other, 1.0)
    with pytest.raises(InvalidRequest, match="request_id is longer"):
        log.find("AcceptTask", agent_state_pb2.TaskRequest(request_id="x" * 129), 1.0)
    assert log.find("AcceptTask", request, 60.0) is None  # past its time
    no_id = agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="a")
    log.remember("AcceptTask", no_id, agent_pb2.Agent(), 1, 0.0)
    assert not log.entries
