"""The chaos suite's rules catch what they are meant to catch (made-up evidence, no I/O)."""

from __future__ import annotations

import json

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2
from tests.chaos.invariants import (
    Confirmed,
    Evidence,
    RouterEntry,
    judge,
    router_picture,
)

WS = "ws-a"
T = task_pb2.TaskEvent
CHAT = inquiry_pb2.CHANNEL_CHAT
RESOLVED = task_pb2.RESOLUTION_RESOLVED


def event(kind: int, inquiry: str, reservation: str, agent: str = "ana", **fields: object) -> T:
    return T(
        type=kind,  # type: ignore[arg-type]
        workspace=WS,
        inquiry_id=inquiry,
        reservation_id=reservation,
        agent_id=agent,
        **fields,  # type: ignore[arg-type]
    )


def resolved(inquiry: str, reservation: str, agent: str = "ana") -> list[T]:
    return [
        event(T.TYPE_OFFERED, inquiry, reservation, agent),
        event(T.TYPE_ACCEPTED, inquiry, reservation, agent),
        event(T.TYPE_COMPLETED, inquiry, reservation, agent, resolution=RESOLVED),
    ]


def agent(load: int, capacity: int = 2, reservations: int = 0) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id="ana",
        workspace=WS,
        status=agent_pb2.AGENT_STATUS_AVAILABLE,
        capacities=[agent_pb2.ChannelCapacity(channel=CHAT, capacity=capacity, load=load)],
        reservations=[
            agent_pb2.Reservation(reservation_id=f"r{n}", channel=CHAT) for n in range(reservations)
        ],
    )


def evidence(*inquiries: str, **fields: object) -> Evidence:
    return Evidence(
        workspaces={WS},
        accepted={(WS, i) for i in inquiries},
        inquiries=[inquiry_pb2.Inquiry(id=i, workspace=WS) for i in inquiries],
        **fields,  # type: ignore[arg-type]
    )


def test_a_clean_run_is_clean() -> None:
    events = resolved("i1", "r1") + resolved("i2", "r2", "ben")
    verdict = judge(evidence("i1", "i2", task_events=events, agents=[agent(0)]))
    assert verdict.clean, verdict.details
    assert (verdict.sent, verdict.resolved) == (2, 2)
    assert verdict.line("tansu", "x").startswith(
        "chaos[tansu] x: sent 2 resolved 2 lost 0 stuck 0 double-offers 0 overruns 0 agree yes"
    )


def test_an_inquiry_never_published_or_dropped_by_the_router_is_lost() -> None:
    unpublished = Evidence(workspaces={WS}, accepted={(WS, "i1")})
    assert judge(unpublished).lost == 1
    dropped = evidence("i1", "i2", router={(WS, "i2"): RouterEntry("finished")})
    verdict = judge(dropped)
    assert (verdict.lost, verdict.stuck) == (2, 0)


def test_an_inquiry_open_at_the_router_at_the_end_is_stuck_unless_nobody_can_take_it() -> None:
    waiting = {(WS, "i1"): RouterEntry("waiting"), (WS, "i2"): RouterEntry("offered", "ana")}
    held = {(WS, "i2"): ("ana", False)}
    verdict = judge(evidence("i1", "i2", router=waiting, reservations=held, agents=[agent(1)]))
    assert (verdict.stuck, verdict.waiting) == (2, 0)
    full = judge(evidence("i1", router={(WS, "i1"): RouterEntry("waiting")}, agents=[agent(2)]))
    assert (full.stuck, full.waiting) == (0, 1)
    assert full.clean


def test_a_second_offer_while_the_first_is_open_is_a_double_offer() -> None:
    events = [
        event(T.TYPE_OFFERED, "i1", "r1", "ana"),
        event(T.TYPE_OFFERED, "i1", "r2", "ben"),
        event(T.TYPE_DECLINED, "i1", "r1", "ana"),
        *resolved("i1", "r2", "ben")[1:],
    ]
    assert judge(evidence("i1", task_events=events)).double_offers == 1
    in_turn = [
        event(T.TYPE_OFFERED, "i1", "r1", "ana"),
        event(T.TYPE_OFFER_TIMEOUT, "i1", "r1", "ana"),
        *resolved("i1", "r2", "ben"),
    ]
    assert judge(evidence("i1", task_events=in_turn)).double_offers == 0


def test_an_offer_after_resolution_is_counted() -> None:
    events = [*resolved("i1", "r1"), event(T.TYPE_OFFERED, "i1", "r2", "ben")]
    assert judge(evidence("i1", task_events=events)).reoffered == 1


def test_a_record_above_capacity_is_an_overrun() -> None:
    over_load = agent_pb2.AgentEvent(agent=agent(3))
    over_reservations = agent_pb2.AgentEvent(agent=agent(2, reservations=3))
    verdict = judge(evidence(agent_events=[over_load, over_reservations]))
    assert verdict.overruns == 2
    assert judge(evidence(agent_events=[agent_pb2.AgentEvent(agent=agent(2))])).overruns == 0


def test_a_confirmed_change_or_published_offer_without_its_event_is_unrecorded() -> None:
    events = resolved("i1", "r1")
    confirmed = [
        Confirmed("accepted", WS, "i1", "ana", "r1"),
        Confirmed("declined", WS, "i2", "ana", "r9"),
    ]
    offers = [
        task_pb2.Assignment(workspace=WS, inquiry_id="i1", agent_id="ana", reservation_id="r1"),
        task_pb2.Assignment(workspace=WS, inquiry_id="i1", agent_id="ben", reservation_id="r7"),
    ]
    verdict = judge(evidence("i1", task_events=events, confirmed=confirmed, assignments=offers))
    assert verdict.unrecorded == 2, verdict.details


def test_pictures_that_differ_do_not_agree() -> None:
    router = {(WS, "i1"): RouterEntry("accepted", "ana")}
    assert judge(evidence(router=router, reservations={(WS, "i1"): ("ana", True)})).agree
    assert not judge(evidence(router=router, reservations={(WS, "i1"): ("ana", False)})).agree
    assert not judge(evidence(router=router)).agree
    assert not judge(evidence(reservations={(WS, "i2"): ("ben", False)})).agree


def test_router_picture_is_the_latest_changelog_record_per_inquiry() -> None:
    def record(key: str, value: dict[str, object] | None) -> tuple[bytes, bytes | None]:
        return key.encode(), None if value is None else json.dumps(value).encode()

    records = [
        record("i1", {"id": "i1", "workspace": WS, "state": "offered", "agent_id": "ana"}),
        record("i1", {"id": "i1", "workspace": WS, "state": "accepted", "agent_id": "ana"}),
        record("i2", {"id": "i2", "workspace": WS, "state": "waiting"}),
        record("i2", None),
        record(f"{WS}/i3", {"workspace": WS, "finished_at": 1.0}),
    ]
    assert router_picture(records) == {
        (WS, "i1"): RouterEntry("accepted", "ana"),
        (WS, "i3"): RouterEntry("finished"),
    }


def test_expiries_count_only_where_none_is_allowed() -> None:
    events = [
        event(T.TYPE_OFFERED, "i1", "r1"),
        event(T.TYPE_OFFER_TIMEOUT, "i1", "r1"),
        event(T.TYPE_OFFERED, "i1", "r2"),
        event(T.TYPE_WITHDRAWN, "i1", "r2", reason="session_timeout"),
        *resolved("i1", "r3", "ben"),
    ]
    assert judge(evidence("i1", task_events=events)).clean
    strict = judge(evidence("i1", task_events=events, expiries_allowed=False))
    assert strict.expired_early == 2
    assert not strict.clean


def test_an_inquiry_every_free_agent_turned_down_is_waiting_not_stuck() -> None:
    turned_down = RouterEntry("waiting", excluded=(("ana", 1300.0),))
    later = RouterEntry("waiting", excluded=(("ana", 900.0),))
    held = evidence("i1", router={(WS, "i1"): turned_down}, agents=[agent(0)], now=1000.0)
    assert (judge(held).stuck, judge(held).waiting) == (0, 1)
    free = evidence("i1", router={(WS, "i1"): later}, agents=[agent(0)], now=1000.0)
    assert (judge(free).stuck, judge(free).waiting) == (1, 0)


def test_a_re_sent_offer_landing_after_its_end_opens_nothing() -> None:
    offered = event(T.TYPE_OFFERED, "i1", "r1", event_id="e1")
    events = [
        offered,
        event(T.TYPE_OFFER_TIMEOUT, "i1", "r1", event_id="e2"),
        offered,  # the same event again, re-sent after the broker came back
        event(T.TYPE_OFFERED, "i1", "r1", event_id="e3"),  # a late copy with its own id
        *resolved("i1", "r2", "ben"),
    ]
    assert judge(evidence("i1", task_events=events)).double_offers == 0
