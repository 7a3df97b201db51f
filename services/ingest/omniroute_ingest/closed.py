"""The "closed" answer: a voice or chat customer whose queue is closed hears when it opens.

The router holds an inquiry that arrives while its queue is closed (business
hours, routing configuration `hours`) and says so in its queue snapshot:
the queue is `closed`, lists the inquiry in `held_ids`, and gives `opens_at`
and the hours' `timezone`. Ingest reads the snapshots (see positions.py) and
answers the customer with the opening time in the queue's own time zone.

Pure: snapshot in, answer out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omniroute.codec import seconds
from omniroute.v1 import queue_pb2


@dataclass(frozen=True)
class Closed:
    """An inquiry held because its queue is closed, and when that queue opens."""

    queue: str
    opens_at: float | None  # None: no opening in sight
    timezone: str
    callback_channels: tuple[str, ...] = ()  # channels offered a callback meanwhile


def held(snapshot: queue_pb2.QueueSnapshot, inquiry_id: str) -> Closed | None:
    """Whether the snapshot holds `inquiry_id` in a closed queue, and until when."""
    for queue in snapshot.queues:
        if inquiry_id in queue.held_ids:
            opens_at = seconds(queue.opens_at) if queue.HasField("opens_at") else None
            return Closed(queue.name, opens_at, queue.timezone, tuple(queue.callback_channels))
    return None


def describe_closed(closed: Closed) -> str:
    """What to tell the customer (IVR speech, chat system message)."""
    if closed.opens_at is None:
        return (
            "We are closed at the moment. Your request is kept and an agent will "
            "answer it when we open."
        )
    try:
        zone = ZoneInfo(closed.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    opens = datetime.fromtimestamp(closed.opens_at, zone)
    when = f"{opens:%A} {opens.day} {opens:%B} at {opens:%H:%M}"
    return (
        f"We are closed at the moment. We open on {when} ({zone.key} time); "
        "your request keeps its place and an agent will answer it then."
    )
