"""The wallboard's queue snapshots and the offers' content, without Kafka (plain dicts)."""

from __future__ import annotations

from omniroute.codec import decode, encode, seconds
from omniroute.v1 import inquiry_pb2, queue_pb2, task_pb2
from omniroute_router.config import Queue, QueueMatch, WorkspaceConfig
from omniroute_router.contents import InquiryContents
from omniroute_router.snapshots import QueueSnapshots, build_snapshot, utc_day
from tests.unit.test_router_routing import T0, agent, inquiry, router

TWO_QUEUES = WorkspaceConfig(
    queues=(
        Queue(name="voice", match=QueueMatch(channels=frozenset({"voice"}))),
        Queue(name="rest"),
    )
)


def test_a_snapshot_counts_each_queue_by_state_and_the_oldest_wait() -> None:
    r = router(TWO_QUEUES, agent("a1", capacity={"voice": 1}))
    r.admit(inquiry("call", channel="voice", arrived_at=T0), T0)
    r.admit(inquiry("old", arrived_at=T0 - 50), T0)
    r.admit(inquiry("new", arrived_at=T0 - 5), T0)
    r.admit(inquiry("later", arrived_at=T0), T0)
    r.offer_made("later", "a1", "res-0", T0)
    r.accepted("later", "a1", T0)
    r.follow_up("later", "a1", T0 + 3600, T0)  # a follow-up not yet due
    for offer in r.plan(T0):
        r.offer_made(offer.inquiry_id, offer.agent_id, "res-1", T0)
    snapshot = build_snapshot(r, {"voice": [3, 4, 0], "gone": [1, 1, 0]}, T0 + 10)

    assert snapshot.workspace == "acme" and snapshot.day == utc_day(T0 + 10)
    assert seconds(snapshot.taken_at) == T0 + 10
    voice, rest = snapshot.queues
    assert (voice.name, voice.waiting, voice.offered, voice.oldest_wait_s) == ("voice", 0, 1, 0.0)
    assert (voice.answered_today, voice.answered_within_target_today) == (4, 3)
    assert (rest.name, rest.waiting, rest.scheduled, rest.oldest_wait_s) == ("rest", 2, 1, 60.0)
    assert rest.answered_today == 0


def test_a_snapshot_says_which_queues_refuse_transfers() -> None:
    config = WorkspaceConfig(
        queues=(Queue(name="vip", accepts_transfers=False), Queue(name="rest"))
    )
    snapshot = build_snapshot(router(config), {}, T0)
    assert [(q.name, q.refuses_transfers) for q in snapshot.queues] == [
        ("vip", True),
        ("rest", False),
    ]


def test_answers_are_counted_per_queue_and_utc_day() -> None:
    snapshots = QueueSnapshots(table={})
    day_one = 1_700_000_000.0  # 2023-11-14 22:13 UTC
    snapshots.answered("acme", "billing", True, day_one)
    snapshots.answered("acme", "billing", False, day_one + 60)
    snapshots.answered("acme", "billing", None, day_one + 120)
    snapshots.answered("other", "billing", True, day_one)
    assert snapshots.today("acme", day_one) == {"billing": [1, 3, 1]}
    next_day = day_one + 2 * 3600
    assert utc_day(next_day) != utc_day(day_one)
    assert snapshots.today("acme", next_day) == {}
    snapshots.answered("acme", "billing", True, day_one + 2 * 86400)
    assert snapshots.today("acme", day_one) == {}  # two days later, the old day is dropped
    assert snapshots.today("other", day_one) == {"billing": [1, 1, 0]}


def test_publishing_sends_the_snapshot_keyed_by_workspace() -> None:
    sent: list[tuple[bytes, bytes]] = []

    class Topic:
        def send_soon(self, key: bytes, value: bytes) -> None:
            sent.append((key, value))

    r = router(None)
    r.admit(inquiry("q1", arrived_at=T0), T0)
    snapshots = QueueSnapshots(table={}, topic=Topic())
    snapshots.answered("acme", "default", True, T0)
    published = snapshots.publish(r, T0 + 2)
    [(key, value)] = sent
    assert decode(queue_pb2.QueueSnapshot, value) == published
    snapshot = decode(queue_pb2.QueueSnapshot, value)
    assert key == b"acme"
    assert [(q.name, q.waiting, q.answered_today) for q in snapshot.queues] == [("default", 1, 1)]


def test_an_assignment_carries_the_inquiry_until_routing_ends() -> None:
    contents = InquiryContents(table={})
    published = inquiry_pb2.Inquiry(
        id="q1",
        workspace="acme",
        subject="Charged twice",
        body="<b>hi</b>",
        channel=inquiry_pb2.CHANNEL_CHAT,
    )
    contents.keep("acme", "q1", encode(published))
    offer = task_pb2.Assignment(inquiry_id="q1", workspace="acme", agent_id="a1")
    contents.attach(offer)
    assert offer.inquiry == published

    elsewhere = task_pb2.Assignment(inquiry_id="q1", workspace="other")
    contents.attach(elsewhere)  # ids are scoped by workspace
    assert not elsewhere.HasField("inquiry")

    contents.forget("acme", ["q1"])
    later = task_pb2.Assignment(inquiry_id="q1", workspace="acme")
    contents.attach(later)
    assert not later.HasField("inquiry") and contents.table == {}


def test_unreadable_content_does_not_stop_an_offer() -> None:
    contents = InquiryContents(table={"acme/q1": "not base64 at all!"})
    offer = task_pb2.Assignment(inquiry_id="q1", workspace="acme")
    contents.attach(offer)
    assert not offer.HasField("inquiry")
