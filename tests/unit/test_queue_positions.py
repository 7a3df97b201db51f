"""Positions and estimated waits: the shared estimate and the router's snapshot lists."""

from __future__ import annotations

import pytest

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2, queue_pb2
from omniroute.waits import MIN_BACKLOG_S, MIN_SPAN_S, ServiceRate, estimated_wait
from omniroute_ingest.positions import (
    Place,
    PlaceState,
    QueueView,
    describe,
    find_place,
    queue_figures,
    unlisted_waiting,
)
from omniroute_router.config import WorkspaceConfig, parse
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.snapshots import QueueSnapshots, build_snapshot

NOW = 1_800_000_000.0


def test_the_estimate_is_position_over_the_service_rate() -> None:
    assert estimated_wait(1, 0.5) == 2.0
    assert estimated_wait(4, 0.5) == 8.0
    assert estimated_wait(3, 0.0) is None  # nothing answered recently: not known
    assert estimated_wait(0, 1.0) is None


def test_the_service_rate_counts_answers_in_its_window() -> None:
    rate = ServiceRate(window_s=600, started=NOW)
    assert rate.rate(NOW) == 0.0
    for n in range(6):
        rate.record(NOW + 10 * n)
    # Young: measured over at least MIN_SPAN_S, not over the 50 s since the start.
    assert rate.rate(NOW + 50) == pytest.approx(6 / MIN_SPAN_S)
    assert rate.rate(NOW + 300) == pytest.approx(6 / 300)
    # A whole window later the old answers have left it.
    assert rate.rate(NOW + 605) == pytest.approx(5 / 600)
    assert rate.rate(NOW + 2000) == 0.0


def test_only_answers_while_inquiries_waited_make_the_backlog_rate() -> None:
    rate = ServiceRate(window_s=600, started=NOW)
    # 100 s with an empty line: answers follow arrivals (one a minute), not capacity.
    rate.observe(NOW, 0)
    rate.record(NOW + 30)
    rate.record(NOW + 90)
    # Then a line forms for 50 s, and agents answer one every 5 s from it.
    rate.observe(NOW + 100, 4)
    for n in range(1, 11):
        rate.record(NOW + 100 + 5 * n)
    rate.observe(NOW + 150, 0)
    assert rate.rate(NOW + 150) == pytest.approx(10 / 50)
    # Later, less than MIN_BACKLOG_S of that backlog is still in the window: the
    # rate is every answer in the window over the window.
    assert rate.rate(NOW + 730) == pytest.approx(4 / 600)  # +135 ... +150
    assert 150 - 130 < MIN_BACKLOG_S


CONFIG = parse(
    """
default:
  aging_s: 3600
  queues:
    - name: vip
      match: {segments: [vip]}
      priority: 5
    - name: general
"""
).default
assert CONFIG is not None


def admit(core: WorkspaceRouter, inquiry_id: str, arrived: float, **fields: object) -> None:
    proto = inquiry_pb2.Inquiry(
        id=inquiry_id, workspace=core.workspace, channel=inquiry_pb2.CHANNEL_CHAT, **fields
    )
    assert core.admit(inquiry_from_proto(proto, arrived), arrived)


def test_waiting_ids_follow_the_routing_order_per_queue_within_the_limit() -> None:
    core = WorkspaceRouter("acme", CONFIG)
    admit(core, "g-old", NOW - 50)
    admit(core, "g-new", NOW - 10)
    admit(core, "g-prio", NOW - 5, priority=3)  # higher priority: offered before the others
    admit(core, "v-1", NOW - 1, customer=inquiry_pb2.Customer(segment="vip"))
    snapshot = build_snapshot(core, {}, NOW, {"general": 0.1}, positions_limit=10)
    queues = {q.name: q for q in snapshot.queues}
    assert list(queues["general"].waiting_ids) == ["g-prio", "g-old", "g-new"]
    assert list(queues["vip"].waiting_ids) == ["v-1"]
    assert queues["general"].service_rate_per_s == 0.1
    assert queues["general"].estimated_wait_s == pytest.approx(4 / 0.1)  # 3 waiting + a newcomer
    assert queues["vip"].estimated_wait_s == -1  # no answers: not known
    limited = build_snapshot(core, {}, NOW, {}, positions_limit=2)
    assert [list(q.waiting_ids) for q in limited.queues] == [["v-1"], ["g-prio", "g-old"]]
    assert [q.waiting for q in limited.queues] == [1, 3]  # the counts stay whole


def test_offered_and_in_progress_ids_are_listed_and_answers_make_the_rate() -> None:
    core = WorkspaceRouter("acme", WorkspaceConfig())
    for n in range(3):
        admit(core, f"i{n}", NOW - 100)
    core.offer_made("i0", "ann", "r0", NOW - 50)
    core.offer_made("i1", "bob", "r1", NOW - 40)
    core.accepted("i1", "bob", NOW - 30)
    snapshots = QueueSnapshots(positions_limit=10, rate_window_s=600)

    class Topic:
        def send_soon(self, key: bytes, value: bytes) -> None:
            pass

    snapshots.topic = Topic()
    snapshots.answered("acme", "default", None, NOW - 30)
    snapshot = snapshots.publish(core, NOW)
    (queue,) = snapshot.queues
    assert list(queue.offered_ids) == ["i0"]
    assert list(queue.in_progress_ids) == ["i1"]
    assert list(queue.waiting_ids) == ["i2"]
    assert queue.service_rate_per_s == pytest.approx(1 / MIN_SPAN_S)
    assert queue.estimated_wait_s == pytest.approx(2 * MIN_SPAN_S)


# -- ingest's side: reading a snapshot --------------------------------------------------------


def snapshot(taken_at: float = NOW) -> queue_pb2.QueueSnapshot:
    return queue_pb2.QueueSnapshot(
        workspace="acme",
        taken_at=timestamp(taken_at),
        queues=[
            queue_pb2.QueueStats(
                name="billing",
                waiting=3,
                oldest_wait_s=42.0,
                service_rate_per_s=0.05,
                estimated_wait_s=80.0,
                waiting_ids=["b1", "b2", "b3"],
                offered_ids=["b0"],
                in_progress_ids=["bx"],
                offered=1,
                in_progress=1,
            ),
            queue_pb2.QueueStats(name="sales", waiting=2, estimated_wait_s=-1, waiting_ids=["s1"]),
        ],
    )


def test_a_place_is_the_rank_in_its_queue_and_the_wait_position_over_rate() -> None:
    assert find_place(snapshot(), "b2") == Place("b2", PlaceState.WAITING, "billing", 2, 40.0)
    assert find_place(snapshot(), "b0") == Place("b0", PlaceState.OFFERED, "billing", 0, 0.0)
    assert find_place(snapshot(), "bx") == Place("bx", PlaceState.IN_PROGRESS, "billing", None, 0.0)
    # sales has no recent answers: the place is known, the wait is not.
    assert find_place(snapshot(), "s1") == Place("s1", PlaceState.WAITING, "sales", 1, None)
    assert find_place(snapshot(), "nope") is None
    assert unlisted_waiting(snapshot())  # sales lists 1 of its 2


def test_queue_figures_are_open_until_business_hours_exist() -> None:
    billing, sales = queue_figures(snapshot())
    assert (billing.name, billing.open, billing.depth, billing.oldest_wait_s) == (
        "billing",
        True,
        3,
        42.0,
    )
    assert billing.estimated_wait_s == 80.0
    assert sales.estimated_wait_s is None


def test_what_the_customer_is_told() -> None:
    assert describe(Place("b1", PlaceState.WAITING, "billing", 1, 20.0)) == (
        "You are next in line. The estimated wait is about 1 minute."
    )
    assert describe(Place("b3", PlaceState.WAITING, "billing", 3, 600.0)) == (
        "You are number 3 in line. The estimated wait is about 10 minutes."
    )
    assert describe(Place("s1", PlaceState.WAITING, "sales", 4, None)) == (
        "You are number 4 in line. An agent will be with you as soon as possible."
    )
    assert describe(Place("b0", PlaceState.OFFERED, "billing", 0, 0.0)).startswith("An agent is")
    assert describe(None).startswith("Thank you for waiting.")


async def test_the_view_uses_fresh_snapshots_only() -> None:
    clock = [NOW]
    view = QueueView(max_age_s=15, clock=lambda: clock[0])
    assert view.fresh("acme") is None and not view.known("acme")
    await view.board.put(snapshot(NOW - 5))
    assert view.fresh("acme") is not None
    assert await view.wait_place("acme", "b1", 0) == find_place(snapshot(), "b1")
    clock[0] = NOW + 20  # the router stopped publishing
    assert view.fresh("acme") is None and view.known("acme")
    assert await view.wait_place("acme", "b1", 0) is None
