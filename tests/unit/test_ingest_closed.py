"""Ingest's "closed" answer from the router's queue snapshot."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from omniroute.codec import timestamp
from omniroute.v1 import queue_pb2
from omniroute_ingest.closed import Closed, describe_closed, held
from omniroute_ingest.positions import PlaceState, describe, find_place, queue_figures

MONDAY_9_MADRID = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Madrid")).timestamp()


def snapshot() -> queue_pb2.QueueSnapshot:
    return queue_pb2.QueueSnapshot(
        workspace="acme",
        queues=[
            queue_pb2.QueueStats(name="general", waiting=2),
            queue_pb2.QueueStats(
                name="shop",
                closed=True,
                timezone="Europe/Madrid",
                opens_at=timestamp(MONDAY_9_MADRID),
                held_ids=["c1", "c2"],
            ),
            queue_pb2.QueueStats(name="nightly", closed=True, held_ids=["c3"]),
        ],
    )


def test_a_held_inquiry_is_found_with_its_opening_time() -> None:
    assert held(snapshot(), "c2") == Closed("shop", MONDAY_9_MADRID, "Europe/Madrid")
    assert held(snapshot(), "c3") == Closed("nightly", None, "")
    assert held(snapshot(), "other") is None


def test_the_answer_says_the_opening_time_in_the_queue_time_zone() -> None:
    text = describe_closed(held(snapshot(), "c1"))  # type: ignore[arg-type]
    assert "We are closed" in text
    assert "Monday 30 November at 09:00 (Europe/Madrid time)" in text
    # 08:00 UTC: said in Madrid's time, not the server's.
    assert "08:00" not in text


def test_no_opening_in_sight_and_an_unknown_zone_still_answer() -> None:
    assert "when we open" in describe_closed(Closed("nightly", None, ""))
    text = describe_closed(Closed("x", MONDAY_9_MADRID, "Mars/Olympus"))
    assert "at 08:00 (UTC time)" in text


def test_the_place_of_a_held_inquiry_is_held_and_said_closed() -> None:
    place = find_place(snapshot(), "c1")
    assert place is not None and place.state is PlaceState.HELD
    assert (place.queue, place.position, place.opens_at) == ("shop", None, MONDAY_9_MADRID)
    assert "We open on Monday 30 November at 09:00" in describe(place)
    figures = {q.name: q for q in queue_figures(snapshot())}
    assert (figures["shop"].open, figures["shop"].opens_at) == (False, MONDAY_9_MADRID)
    assert (figures["general"].open, figures["general"].opens_at) == (True, None)
