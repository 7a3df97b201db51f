"""Callback requests at the edge: the number, and whether the inquiry can still be called back.

A customer waiting on voice or chat may ask to be called back instead of
waiting (an IVR digit, a chat action, or the HTTP API). Ingest checks what it
can (the number is E.164; the router's latest snapshot lists the inquiry and
no agent has it yet), publishes a TaskEvent TYPE_CALLBACK_REQUESTED keyed by
workspace, and answers once the broker acknowledged it. The router decides
the rest (callbacks.py in services/router): the inquiry keeps its place in
line and is offered to an agent with a free voice slot as an outbound call.

Pure: input in, `Rejected` or nothing out. The number is personal data: it
is never in an error message, a log line or a metric label.
"""

from __future__ import annotations

from omniroute.codec import is_e164
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.positions import Place, PlaceState

#: The channels whose customers wait on the line and may ask to be called back.
REALTIME = {"voice": inquiry_pb2.CHANNEL_VOICE, "chat": inquiry_pb2.CHANNEL_CHAT}
#: The IVR digit that asks for a callback.
CALLBACK_DIGIT = "1"


def check_number(number: str, field: str) -> str:
    """The number to call (spaces and dashes dropped) or 422 naming `field`."""
    cleaned = "".join(number.split()).replace("-", "")
    if not is_e164(cleaned):
        raise invalid(field, "must be a phone number in E.164 form, e.g. +15550001111")
    return cleaned


def check_place(place: Place | None) -> None:
    """404 when the router lists no such inquiry; 409 when an agent already has it."""
    if place is None:
        raise Rejected(
            404,
            "not_found",
            "inquiry_id: not waiting (unknown, finished or not yet queued)",
        )
    if place.state is PlaceState.IN_PROGRESS:
        raise Rejected(409, "invalid", "inquiry_id: an agent is already handling it")
