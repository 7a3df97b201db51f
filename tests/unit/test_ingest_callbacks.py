"""Callback requests at ingest's edge: the number, the inquiry's place, the answers."""

from __future__ import annotations

import pytest

from omniroute.codec import timestamp
from omniroute.v1 import queue_pb2
from omniroute_ingest.callbacks import check_number, check_place
from omniroute_ingest.errors import Rejected
from omniroute_ingest.positions import (
    PlaceState,
    describe,
    find_place,
    offers_callback,
    queue_figures,
)


def snapshot() -> queue_pb2.QueueSnapshot:
    return queue_pb2.QueueSnapshot(
        workspace="acme",
        queues=[
            queue_pb2.QueueStats(
                name="support",
                waiting=2,
                waiting_ids=["plain", "cb"],
                in_progress_ids=["taken"],
                callbacks=1,
                callback_ids=["cb"],
                service_rate_per_s=0.1,
            ),
            queue_pb2.QueueStats(
                name="shop",
                closed=True,
                opens_at=timestamp(1_800_000_000),
                timezone="Europe/Madrid",
                held_ids=["held", "held-cb"],
                callback_ids=["held-cb"],
                callback_channels=["voice"],
            ),
        ],
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [("+15550001111", "+15550001111"), ("+34 600 123-456", "+34600123456")],
)
def test_numbers_in_e164_are_taken(given: str, expected: str) -> None:
    assert check_number(given, "number") == expected


@pytest.mark.parametrize("bad", ["", "15550001111", "+0555000111", "+1555", "+1" + "5" * 15, "+1abc5550000"])  # fmt: skip
def test_other_numbers_are_refused_naming_the_field_not_the_number(bad: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_number(bad, "From")
    assert (refused.value.status, refused.value.fields[0]["field"]) == (422, "From")
    # The same words whatever was sent: the number itself is never echoed.
    assert refused.value.message == "From: must be a phone number in E.164 form, e.g. +15550001111"


def test_a_callback_keeps_its_position_and_says_so() -> None:
    place = find_place(snapshot(), "cb")
    assert place is not None
    assert (place.state, place.position) == (PlaceState.CALLBACK, 2)
    assert describe(place) == "We will call you back; you keep your place in line. You are number 2 in line."  # fmt: skip
    plain = find_place(snapshot(), "plain")
    assert plain is not None and plain.state is PlaceState.WAITING
    held = find_place(snapshot(), "held-cb")
    assert held is not None
    assert (held.state, held.opens_at) == (PlaceState.CALLBACK, 1_800_000_000)


def test_a_closed_queue_offers_a_callback_to_the_channels_of_its_policy() -> None:
    held = find_place(snapshot(), "held")
    assert offers_callback(held, "voice")
    assert not offers_callback(held, "chat")
    assert not offers_callback(find_place(snapshot(), "plain"), "voice")


def test_only_a_listed_inquiry_no_agent_has_can_be_called_back() -> None:
    with pytest.raises(Rejected) as unknown:
        check_place(find_place(snapshot(), "nobody"))
    assert (unknown.value.status, unknown.value.fields) == (404, [])
    assert unknown.value.message.startswith("inquiry_id:")
    with pytest.raises(Rejected) as taken:
        check_place(find_place(snapshot(), "taken"))
    assert taken.value.status == 409
    check_place(find_place(snapshot(), "plain"))
    check_place(find_place(snapshot(), "held"))


def test_the_queue_figures_count_the_callbacks() -> None:
    assert [(q.name, q.callbacks) for q in queue_figures(snapshot())] == [("support", 1), ("shop", 0)]  # fmt: skip
