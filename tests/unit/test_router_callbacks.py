"""Callbacks in the routing core: the place kept, an outbound voice task, leaving ends nothing."""

from __future__ import annotations

import pytest

from omniroute_router.callbacks import CallbackOutcome, decide
from omniroute_router.config import Queue, QueueMatch, WorkspaceConfig
from omniroute_router.decisions import NoticeKind
from omniroute_router.hours import ClosedPolicy
from omniroute_router.model import AgentStatus, AgentView, InquiryState, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.snapshots import build_snapshot
from tests.unit.test_router_queue_controls import MONDAY_8, MONDAY_9, config, office

T0 = 1_000_000.0
NUMBER = "+15550001111"


def router() -> WorkspaceRouter:
    return WorkspaceRouter(
        "acme",
        WorkspaceConfig(
            queues=(Queue("support", QueueMatch(channels=frozenset({"chat", "voice", "email"}))),),
            service_levels={"voice": 60},
        ),
    )


def agent(agent_id: str, **capacity: int) -> AgentView:
    return AgentView(
        id=agent_id,
        workspace="acme",
        capacity=capacity,
        status=AgentStatus.AVAILABLE,
        version=1,
    )


def inquiry(inquiry_id: str, arrived: float, channel: str = "chat") -> QueuedInquiry:
    return QueuedInquiry(
        id=inquiry_id, workspace="acme", channel=channel, queue="", arrived_at=arrived
    )


def test_a_waiting_chat_becomes_an_outbound_call_and_keeps_its_place() -> None:
    r = router()
    for n, inquiry_id in enumerate(("first", "second", "third")):
        r.admit(inquiry(inquiry_id, T0 + n), T0 + n)
    r.drain_notices()
    assert r.callback_requested("second", NUMBER, T0 + 10) is CallbackOutcome.REQUESTED
    second = r.inquiries["second"]
    assert (second.channel, second.origin_channel, second.callback) == ("voice", "chat", NUMBER)
    assert (second.arrived_at, second.queue, second.state) == (T0 + 1, "support", "waiting")
    assert second.history == ["callback_requested:chat"]
    # Still second in line: the order key (priority, arrival) did not change.
    assert [i.id for i in r.waiting_in_order(T0 + 10)] == ["first", "second", "third"]
    [notice] = r.drain_notices()
    assert (notice.kind, notice.reason) == (NoticeKind.CALLBACK, "requested")
    # A chat agent with no voice slot does not get it; one with a voice slot does.
    r.update_agent(agent("chatty", chat=5))
    assert [o.inquiry_id for o in r.plan(T0 + 11)] == ["first", "third"]
    r.update_agent(agent("caller", voice=1))
    assert [(o.inquiry_id, o.agent_id) for o in r.plan(T0 + 12, agent_ids=["caller"])] == [
        ("second", "caller"),
    ]


def test_a_callback_is_offered_before_later_voice_calls() -> None:
    r = router()
    r.admit(inquiry("chat", T0), T0)
    r.admit(inquiry("call", T0 + 5, "voice"), T0 + 5)
    r.callback_requested("chat", NUMBER, T0 + 6)
    r.update_agent(agent("caller", voice=1))
    assert [o.inquiry_id for o in r.plan(T0 + 7)] == ["chat"]


def test_the_customer_leaving_no_longer_abandons_a_callback() -> None:
    r = router()
    r.admit(inquiry("c1", T0, "voice"), T0)
    r.callback_requested("c1", NUMBER, T0 + 1)
    r.drain_notices()
    assert r.abandoned("c1", T0 + 2) is False  # the call hung up after asking
    assert "c1" in r.inquiries and "c1" not in r.finished
    assert r.drain_notices() == []
    # It is handled and completed like any other task.
    r.update_agent(agent("caller", voice=1))
    [offer] = r.plan(T0 + 3)
    r.offer_made("c1", offer.agent_id, "r1", T0 + 3)
    assert r.accepted("c1", "caller", T0 + 20) == 20  # waited from its arrival
    assert r.resolved("c1", "caller", T0 + 60)
    assert "c1" in r.finished


def test_an_open_offer_is_withdrawn_and_the_callback_waits_first_in_line() -> None:
    r = router()
    r.update_agent(agent("chatty", chat=1))
    r.admit(inquiry("c1", T0), T0)
    r.admit(inquiry("c2", T0 + 1), T0 + 1)
    [offer] = r.plan(T0 + 2)
    assert (offer.inquiry_id, offer.agent_id) == ("c1", "chatty")
    r.offer_made("c1", "chatty", "r1", T0 + 2)
    assert r.callback_requested("c1", NUMBER, T0 + 3) is CallbackOutcome.REQUESTED
    [withdrawal] = r.drain_withdrawals()
    assert (withdrawal.inquiry_id, withdrawal.reservation_id, withdrawal.reason) == (
        "c1", "r1", "callback",
    )  # fmt: skip
    c1 = r.inquiries["c1"]
    assert (c1.state, c1.agent_id, c1.channel) == (InquiryState.WAITING, "", "voice")
    # agent-state's WITHDRAWN event for that offer changes nothing now.
    assert not r.offer_failed("c1", "chatty", "r1", "withdrawn", T0 + 4)
    assert [i.id for i in r.waiting_in_order(T0 + 4)] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("email", CallbackOutcome.NOT_REALTIME),
        ("accepted", CallbackOutcome.TOO_LATE),
        ("twice", CallbackOutcome.DUPLICATE),
        ("finished", CallbackOutcome.UNKNOWN),
        ("never", CallbackOutcome.UNKNOWN),
    ],
)
def test_requests_that_change_nothing(setup: str, expected: CallbackOutcome) -> None:
    r = router()
    r.update_agent(agent("ann", chat=1, email=1))
    r.admit(inquiry("x", T0, "email" if setup == "email" else "chat"), T0)
    if setup in ("accepted", "finished"):
        r.plan(T0 + 1)
        r.offer_made("x", "ann", "r1", T0 + 1)
        r.accepted("x", "ann", T0 + 2)
        if setup == "finished":
            r.resolved("x", "ann", T0 + 3)
    if setup == "twice":
        r.callback_requested("x", NUMBER, T0 + 4)
    before = r.inquiries["x"].to_dict() if "x" in r.inquiries else None
    r.drain_changes()
    r.drain_notices()
    inquiry_id = "nobody" if setup == "never" else "x"
    assert r.callback_requested(inquiry_id, "+15559999999", T0 + 5) is expected
    after = r.inquiries["x"].to_dict() if "x" in r.inquiries else None
    assert after == before  # nothing changed (a retry: the first number stands)
    assert r.drain_changes().inquiries == frozenset()
    [notice] = r.drain_notices()
    assert notice.reason == expected.value


def test_decide_is_the_rule() -> None:
    assert decide(None) is CallbackOutcome.UNKNOWN
    held = inquiry("h", T0, "voice")
    held.state = InquiryState.HELD
    assert decide(held) is CallbackOutcome.REQUESTED
    held.state = InquiryState.SCHEDULED
    assert decide(held) is CallbackOutcome.TOO_LATE


def test_a_closed_queue_offers_a_callback_taken_while_held_and_routed_at_opening() -> None:
    hours = office(voice=ClosedPolicy.CALLBACK, chat=ClosedPolicy.CALLBACK)
    r = WorkspaceRouter("acme", config(hours))
    r.admit(inquiry("call", MONDAY_8, "voice"), MONDAY_8)
    r.admit(inquiry("chat", MONDAY_8 + 1), MONDAY_8 + 1)
    assert r.inquiries["call"].history == ["closed:day:callback_offered"]
    assert r.callback_requested("chat", NUMBER, MONDAY_8 + 2) is CallbackOutcome.REQUESTED
    chat = r.inquiries["chat"]
    assert (chat.state, chat.channel, chat.due_at) == (InquiryState.HELD, "voice", MONDAY_9)
    # The caller who did not take it hangs up: abandoned as usual.
    assert r.abandoned("call", MONDAY_8 + 3)
    snapshot = build_snapshot(r, {}, MONDAY_8 + 4, positions_limit=10)
    day = next(q for q in snapshot.queues if q.name == "day")
    assert (day.callbacks, list(day.callback_ids), list(day.held_ids)) == (1, ["chat"], ["chat"])
    assert list(day.callback_channels) == ["chat", "voice"]
    r.update_agent(
        AgentView(
            id="ann",
            workspace="acme",
            capacity={"voice": 1},
            status=AgentStatus.AVAILABLE,
            version=1,
        )
    )
    assert r.plan(MONDAY_8 + 5) == []
    r.housekeeping(MONDAY_9 + 1)
    [offer] = r.plan(MONDAY_9 + 2)
    assert (offer.inquiry_id, offer.agent_id) == ("chat", "ann")
    assert r.inquiries["chat"].history == [
        "closed:day:callback_offered", "callback_requested:chat", "opened:day",
    ]  # fmt: skip


def test_callbacks_survive_persistence_and_a_reload() -> None:
    r = router()
    r.admit(inquiry("c1", T0), T0)
    r.callback_requested("c1", NUMBER, T0 + 1)
    restored = router()
    restored.restore_inquiry(QueuedInquiry.from_dict(r.inquiries["c1"].to_dict()))
    assert restored.inquiries["c1"].callback == NUMBER
    assert restored.queue_stats(T0 + 2)["support"].callbacks == 1
    assert not restored.abandoned("c1", T0 + 2)
    reloaded = restored.reconfigured(router().config, T0 + 3)
    assert reloaded.queue_stats(T0 + 3)["support"].callbacks == 1
    reloaded.update_agent(agent("caller", voice=1))
    [offer] = reloaded.plan(T0 + 4)
    reloaded.offer_made("c1", offer.agent_id, "r1", T0 + 4)
    # Offered: no longer counted as a callback waiting.
    assert reloaded.queue_stats(T0 + 4)["support"].callbacks == 0


def test_a_request_naming_another_channel_changes_nothing() -> None:
    r = router()
    r.admit(inquiry("c1", T0), T0)
    assert r.callback_requested("c1", NUMBER, T0 + 1, "voice") is CallbackOutcome.WRONG_CHANNEL
    assert r.inquiries["c1"].callback == ""
    assert r.callback_requested("c1", NUMBER, T0 + 2, "chat") is CallbackOutcome.REQUESTED
