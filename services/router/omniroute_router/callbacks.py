"""Callbacks: a customer waiting on voice or chat asks to be called back instead.

The rules, plain and synchronous like the rest of the core (no clock, no I/O):

- Only a real-time inquiry (`voice`, `chat`) that no agent has taken yet
  (waiting, held while its queue is closed, or offered and not yet accepted)
  becomes a callback. One already a callback stays as it is (a retried
  request changes nothing, the first number stands); one being handled, a
  follow-up, or one unknown or finished is left alone, and the outcome says
  why.
- A callback keeps its queue, priority and arrival time, so its place in
  line (the order key) is the one it had; an open offer is taken back
  first (the chat agent offered it may have no voice slot).
- It is routed as an outbound call: channel `voice`, so only an agent with a
  free voice slot gets it, and the offer carries the number to call.
- The customer leaving (the call hung up, the chat closed) no longer
  abandons it.

`CallbackIndex` keeps, per queue, the callbacks not yet offered (waiting or
held) in the order they were filed, for the queue snapshot's count and list.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from enum import StrEnum

from omniroute_router.model import InquiryState, QueuedInquiry

#: The channels whose customers wait on the line and may ask for a callback.
REALTIME = frozenset({"voice", "chat"})
#: A callback is an outbound call.
CALLBACK_CHANNEL = "voice"


class CallbackOutcome(StrEnum):
    """What a callback request did (the metric's label values)."""

    REQUESTED = "requested"  # the inquiry is now a callback
    DUPLICATE = "duplicate"  # already a callback: nothing changed
    NOT_REALTIME = "not_realtime"  # not a voice or chat inquiry
    WRONG_CHANNEL = "wrong_channel"  # the request named another channel than the inquiry's
    TOO_LATE = "too_late"  # an agent has it already, or it is a scheduled follow-up
    UNKNOWN = "unknown"  # not routed here (finished, or never seen)


#: The states in which a customer is still waiting to be served.
_WAITING = frozenset({InquiryState.WAITING, InquiryState.HELD, InquiryState.OFFERED})


def decide(inquiry: QueuedInquiry | None, channel: str = "") -> CallbackOutcome:
    """Whether a callback request turns `inquiry` (None: not routed here) into a callback.

    `channel`: the channel the request says the customer waits on ("": not said).
    """
    if inquiry is None:
        return CallbackOutcome.UNKNOWN
    if inquiry.callback:
        return CallbackOutcome.DUPLICATE
    if inquiry.channel not in REALTIME:
        return CallbackOutcome.NOT_REALTIME
    if channel and channel != inquiry.channel:
        return CallbackOutcome.WRONG_CHANNEL
    if inquiry.state not in _WAITING:
        return CallbackOutcome.TOO_LATE
    return CallbackOutcome.REQUESTED


def make_callback(inquiry: QueuedInquiry, number: str) -> None:
    """Turn `inquiry` (out of the core's indexes) into a callback to `number`.

    Its queue, priority and arrival time stay: its place in line is kept.
    """
    inquiry.callback = number
    inquiry.origin_channel = inquiry.channel
    inquiry.channel = CALLBACK_CHANNEL
    inquiry.history.append(f"callback_requested:{inquiry.origin_channel}")


def pending(inquiry: QueuedInquiry) -> bool:
    """A callback not yet offered: waiting for an agent or for its queue to open."""
    return bool(inquiry.callback) and inquiry.state in (InquiryState.WAITING, InquiryState.HELD)


class CallbackIndex:
    """Per queue, the callbacks not yet offered, in the order they were filed."""

    def __init__(self) -> None:
        self._by_queue: dict[str, dict[str, None]] = {}

    def add(self, queue: str, inquiry_id: str) -> None:
        self._by_queue.setdefault(queue, {})[inquiry_id] = None

    def discard(self, queue: str, inquiry_id: str) -> None:
        ids = self._by_queue.get(queue)
        if ids is not None:
            ids.pop(inquiry_id, None)
            if not ids:
                del self._by_queue[queue]

    def count(self, queue: str) -> int:
        """How many callbacks `queue` holds."""
        return len(self._by_queue.get(queue, ()))

    def ids(self, queue: str, limit: int) -> Iterator[str]:
        """The first `limit` of them."""
        return itertools.islice(self._by_queue.get(queue, {}), limit)
