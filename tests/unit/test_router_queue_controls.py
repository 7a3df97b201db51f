"""Business hours and overflow inside the routing core: held, redirected, released, moved."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from omniroute_router.config import Queue, QueueMatch, WorkspaceConfig
from omniroute_router.hours import ClosedPolicy, Hours
from omniroute_router.model import AgentStatus, AgentView, InquiryState, QueuedInquiry
from omniroute_router.overflow import OverflowRule, Trigger
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.snapshots import build_snapshot

MADRID = ZoneInfo("Europe/Madrid")
NINE_TO_FIVE = ((9 * 60, 17 * 60),)


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=MADRID).timestamp()  # type: ignore[misc]


MONDAY_8 = at(2026, 11, 23, 8, 0)  # an hour before opening
MONDAY_9 = at(2026, 11, 23, 9, 0)
MONDAY_10 = at(2026, 11, 23, 10, 0)


def office(**policy: ClosedPolicy) -> Hours:
    return Hours(
        timezone="Europe/Madrid",
        weekly=(NINE_TO_FIVE,) * 5 + ((), ()),
        exceptions={date(2026, 12, 25): ()},
        when_closed=policy,
        after_hours_queue="night" if ClosedPolicy.AFTER_HOURS in policy.values() else "",
    )


def config(hours: Hours, *more: Queue) -> WorkspaceConfig:
    return WorkspaceConfig(
        queues=(
            Queue("day", QueueMatch(channels=frozenset({"chat", "voice", "email"})), hours=hours),
            Queue("night", QueueMatch(segments=frozenset({"never"}))),
            *more,
            Queue("general"),
        ),
        service_levels={"chat": 60},
    )


def agent(agent_id: str = "ann", **kw: object) -> AgentView:
    fields: dict[str, object] = {
        "workspace": "acme",
        "capacity": {"chat": 5, "voice": 1, "email": 5},
        "status": AgentStatus.AVAILABLE,
        "version": 1,
    }
    fields.update(kw)
    return AgentView(id=agent_id, **fields)  # type: ignore[arg-type]


def inquiry(inquiry_id: str, arrived: float, channel: str = "chat") -> QueuedInquiry:
    return QueuedInquiry(
        id=inquiry_id, workspace="acme", channel=channel, queue="", arrived_at=arrived
    )


def test_a_closed_queue_holds_until_it_opens_and_the_sla_clock_starts_then() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.update_agent(agent())
    assert r.admit(inquiry("c1", MONDAY_8), MONDAY_8)
    held = r.inquiries["c1"]
    assert (held.state, held.queue, held.due_at) == (InquiryState.HELD, "day", MONDAY_9)
    assert held.history == ["closed:day:hold"]
    [notice] = r.drain_notices()
    assert (notice.kind, notice.queue, notice.reason) == ("closed_arrival", "day", "hold")
    # Not offered while closed, though an agent is free.
    assert r.plan(MONDAY_8 + 60) == []
    r.housekeeping(MONDAY_9 - 1)
    assert r.inquiries["c1"].state is InquiryState.HELD

    r.housekeeping(MONDAY_9 + 1)
    released = r.inquiries["c1"]
    assert (released.state, released.sla_from, released.queued_at) == (
        InquiryState.WAITING, MONDAY_9, MONDAY_9,
    )  # fmt: skip
    assert released.history[-1] == "opened:day"
    [offer] = r.plan(MONDAY_9 + 2)
    r.offer_made("c1", offer.agent_id, "r1", MONDAY_9 + 2)
    # Answered 30 s after opening, 1 h 0 min 30 s after arrival: the wait counts from opening.
    assert r.accepted("c1", "ann", MONDAY_9 + 30) == 30


def test_the_policy_is_per_channel_after_hours_goes_to_the_other_queue() -> None:
    hours = office(chat=ClosedPolicy.AFTER_HOURS, voice=ClosedPolicy.CALLBACK)
    r = WorkspaceRouter("acme", config(hours))
    r.admit(inquiry("chat", MONDAY_8), MONDAY_8)
    r.admit(inquiry("voice", MONDAY_8, "voice"), MONDAY_8)
    r.admit(inquiry("email", MONDAY_8, "email"), MONDAY_8)
    chat, voice, email = (r.inquiries[i] for i in ("chat", "voice", "email"))
    assert (chat.state, chat.queue) == (InquiryState.WAITING, "night")
    assert chat.history == ["closed:day:after_hours:night"]
    # Held like `hold`; ingest's closed answer offers the caller a callback.
    assert (voice.state, voice.history) == (InquiryState.HELD, ["closed:day:callback_offered"])
    assert (email.state, email.history) == (InquiryState.HELD, ["closed:day:hold"])
    assert sorted((n.queue, n.reason) for n in r.drain_notices()) == [
        ("day", "after_hours_queue"), ("day", "callback"), ("day", "hold"),
    ]  # fmt: skip
    r.update_agent(agent())
    assert [o.inquiry_id for o in r.plan(MONDAY_8 + 1)] == ["chat"]


def test_an_open_queue_takes_arrivals_and_holidays_hold_until_the_next_working_day() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.admit(inquiry("open", MONDAY_10), MONDAY_10)
    assert r.inquiries["open"].state is InquiryState.WAITING
    assert r.drain_notices() == []
    christmas = at(2026, 12, 25, 11, 0)
    r.admit(inquiry("xmas", christmas), christmas)
    assert r.inquiries["xmas"].due_at == at(2026, 12, 28, 9, 0)


def test_held_inquiries_survive_persistence_and_a_reload_that_opens_the_queue() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.admit(inquiry("c1", MONDAY_8), MONDAY_8)
    restored = WorkspaceRouter("acme", config(office()))
    restored.restore_inquiry(QueuedInquiry.from_dict(r.inquiries["c1"].to_dict()))
    restored.housekeeping(MONDAY_9 + 1)
    assert restored.inquiries["c1"].state is InquiryState.WAITING
    # A reload that makes the queue always open releases a held inquiry at the next tick.
    r = r.reconfigured(config(Hours(timezone="UTC", weekly=(((0, 1440),),) * 7)), MONDAY_8 + 10)
    r.housekeeping(MONDAY_8 + 11)
    assert r.inquiries["c1"].state is InquiryState.WAITING
    assert r.inquiries["c1"].sla_from == MONDAY_8 + 10


def test_an_abandoned_held_inquiry_is_gone_from_the_hold() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.admit(inquiry("c1", MONDAY_8), MONDAY_8)
    assert r.abandoned("c1", MONDAY_8 + 5)
    r.housekeeping(MONDAY_9 + 1)  # nothing to release, no KeyError
    assert "c1" not in r.inquiries


def overflowing(*rules: OverflowRule) -> WorkspaceRouter:
    queues = (
        Queue("vip", QueueMatch(segments=frozenset({"vip"})), overflow=rules),
        Queue("backup", QueueMatch(segments=frozenset({"never"})), overflow=(
            OverflowRule("vip", Trigger.WAIT, 0),  # would send everything back at once
        )),
        Queue("general"),
    )  # fmt: skip
    return WorkspaceRouter("acme", WorkspaceConfig(queues=queues))


def vip(inquiry_id: str, arrived: float) -> QueuedInquiry:
    found = inquiry(inquiry_id, arrived)
    found.segment = "vip"
    return found


def test_overflow_after_a_wait_moves_the_oldest_counts_and_records_it() -> None:
    r = overflowing(OverflowRule("backup", Trigger.WAIT, 120))
    for i in range(5):
        r.admit(vip(f"v{i}", MONDAY_10 + 60 * i), MONDAY_10 + 60 * i)
    r.drain_notices()
    r.housekeeping(MONDAY_10 + 190)  # v0 waited 190 s, v1 130 s, v2 70 s
    assert [i for i, q in sorted((i, q.queue) for i, q in r.inquiries.items()) if q == "backup"] == [
        "v0", "v1",
    ]  # fmt: skip
    moved = r.inquiries["v0"]
    assert moved.history[-1] == "overflow:vip:backup:wait"
    assert moved.left_queues == ["vip"] and moved.queued_at == MONDAY_10 + 190
    notices = [n for n in r.drain_notices() if n.kind == "overflowed"]
    assert [(n.inquiry_id, n.queue, n.to_queue, n.reason) for n in notices] == [
        ("v0", "vip", "backup", "wait"), ("v1", "vip", "backup", "wait"),
    ]  # fmt: skip
    # backup's own rule would send them straight back: never to a queue they left.
    r.housekeeping(MONDAY_10 + 191)
    assert r.inquiries["v0"].queue == "backup"
    assert "v0" in r.drain_changes().inquiries


def test_overflow_above_a_depth_moves_the_newest_and_offered_ones_do_not_count() -> None:
    r = overflowing(OverflowRule("general", Trigger.DEPTH, 2))
    for i in range(4):
        r.admit(vip(f"v{i}", MONDAY_10 + i), MONDAY_10 + i)
    r.update_agent(agent(capacity={"chat": 1}))
    [offer] = r.plan(MONDAY_10 + 5)
    r.offer_made(offer.inquiry_id, "ann", "r1", MONDAY_10 + 5)
    r.housekeeping(MONDAY_10 + 6)
    # v0 is offered; of v1..v3 the newest beyond a depth of 2 moves.
    assert {i: q.queue for i, q in r.inquiries.items()} == {
        "v0": "vip", "v1": "vip", "v2": "vip", "v3": "general",
    }  # fmt: skip


def test_overflow_by_estimated_wait_uses_the_service_rate() -> None:
    r = overflowing(OverflowRule("general", Trigger.ESTIMATED_WAIT, 300))
    r.housekeeping(MONDAY_10)  # the queue's service rate starts
    r.update_agent(agent(capacity={"chat": 1}))
    # Three answered in the window (900 s) with nobody left waiting: 1 every 300 s,
    # so only the first in line is expected within 300 s (omniroute.waits).
    for i in range(3):
        t = MONDAY_10 + 10 * (i + 1)
        r.admit(vip(f"a{i}", t), t)
        [offer] = r.plan(t)
        r.offer_made(offer.inquiry_id, "ann", f"r{i}", t)
        r.accepted(offer.inquiry_id, "ann", t + 1)
        r.resolved(offer.inquiry_id, "ann", t + 2)
        r.update_agent(agent(capacity={"chat": 1}, version=2 + i))
    r.update_agent(agent(status=AgentStatus.AWAY, version=99))
    t = MONDAY_10 + 895
    for i in range(3):
        r.admit(vip(f"w{i}", t + i), t + i)
    r.housekeeping(MONDAY_10 + 900)
    assert {i: q.queue for i, q in r.inquiries.items()} == {
        "w0": "vip", "w1": "general", "w2": "general",
    }  # fmt: skip


def test_no_overflow_into_a_closed_queue() -> None:
    closed_backup = Queue(
        "backup",
        QueueMatch(segments=frozenset({"never"})),
        hours=Hours(timezone="Europe/Madrid", weekly=(NINE_TO_FIVE,) * 7),
    )
    r = WorkspaceRouter(
        "acme",
        WorkspaceConfig(
            queues=(
                Queue(
                    "vip",
                    QueueMatch(segments=frozenset({"vip"})),
                    overflow=(OverflowRule("backup", Trigger.WAIT, 0),),
                ),
                closed_backup,
                Queue("general"),
            )
        ),
    )
    r.admit(vip("v0", MONDAY_8), MONDAY_8)
    r.housekeeping(MONDAY_8 + 1)
    assert r.inquiries["v0"].queue == "vip"
    r.housekeeping(MONDAY_9 + 1)
    assert r.inquiries["v0"].queue == "backup"


def test_an_overflow_leaves_the_skills_of_the_queue_it_left_behind() -> None:
    experts = Queue(
        "experts",
        QueueMatch(kinds=frozenset({"complaint"})),
        required_skills=(("complaints", 4), ("billing", 2)),
        overflow=(OverflowRule("general", Trigger.WAIT, 60),),
    )
    r = WorkspaceRouter("acme", WorkspaceConfig(queues=(experts, Queue("general"))))
    complaint = inquiry("c1", MONDAY_10)
    complaint.kind, complaint.skills = "complaint", {"billing": 3}
    r.admit(complaint, MONDAY_10)
    assert r.inquiries["c1"].skills == {"complaints": 4, "billing": 3}
    r.update_agent(agent(skills={"billing": 3}))
    assert r.plan(MONDAY_10 + 1) == []
    r.housekeeping(MONDAY_10 + 61)
    moved = r.inquiries["c1"]
    # The inquiry's own billing 3 stays; the experts' complaints 4 is gone.
    assert (moved.queue, moved.skills) == ("general", {"billing": 3})
    assert [o.agent_id for o in r.plan(MONDAY_10 + 62)] == ["ann"]


def test_the_snapshot_counts_held_as_not_yet_due_and_waits_from_opening() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.admit(inquiry("early", MONDAY_8), MONDAY_8)
    held = build_snapshot(r, {}, MONDAY_8 + 60)
    day = next(q for q in held.queues if q.name == "day")
    assert (day.waiting, day.scheduled) == (0, 1)
    r.housekeeping(MONDAY_9 + 1)
    opened = build_snapshot(r, {}, MONDAY_9 + 120)
    day = next(q for q in opened.queues if q.name == "day")
    # It arrived at 08:00 but the queue opened at 09:00: the oldest wait is 2 minutes.
    assert (day.waiting, day.oldest_wait_s) == (1, 120)


def test_the_snapshot_says_closed_until_when_and_who_is_held() -> None:
    r = WorkspaceRouter("acme", config(office()))
    r.admit(inquiry("h1", MONDAY_8), MONDAY_8)
    r.admit(inquiry("h2", MONDAY_8 + 1, "email"), MONDAY_8 + 1)
    closed = build_snapshot(r, {}, MONDAY_8 + 60)
    day, night = closed.queues[0], closed.queues[1]
    assert (day.name, day.closed, day.timezone) == ("day", True, "Europe/Madrid")
    assert day.opens_at.seconds == MONDAY_9 and not day.HasField("closes_at")
    assert list(day.held_ids) == ["h1", "h2"]
    # A queue without hours is always open and says nothing more.
    assert (night.closed, night.HasField("opens_at"), night.timezone) == (False, False, "")
    r.housekeeping(MONDAY_9 + 1)
    opened = build_snapshot(r, {}, MONDAY_9 + 60)
    day = opened.queues[0]
    assert not day.closed and day.closes_at.seconds == at(2026, 11, 23, 17, 0)
    assert list(day.held_ids) == [] and day.waiting == 2
