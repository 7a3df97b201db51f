"""Place in line and estimated wait, from the router's queue snapshots.

The router publishes a `QueueSnapshot` per workspace per tick on
`queue-snapshots`; every ingest replica follows the topic
(`omniroute.feeds.SnapshotReader`, no consumer group) into a `QueueView`, so
any replica answers for any workspace. Nothing here guesses: an inquiry's
place is its rank among its queue's waiting ids as the router listed them
(the order it offers them), and its estimated wait is `omniroute.waits`'s
position over the queue's recent service rate, as the router measured it.

`find_place`, `queue_figures` and `describe` are pure (snapshot in, answer
out); `QueueView` holds the latest snapshot per workspace and refuses one
older than `max_age_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from omniroute.codec import seconds
from omniroute.feeds import SnapshotBoard
from omniroute.v1 import queue_pb2
from omniroute.waits import estimated_wait
from omniroute_ingest.closed import Closed, describe_closed, held


class PlaceState(StrEnum):
    """Where an inquiry is, as the router last published it."""

    WAITING = "waiting"  # in line for an agent
    OFFERED = "offered"  # offered to an agent, who has not answered yet
    IN_PROGRESS = "in_progress"  # an agent accepted it
    HELD = "held"  # its queue is closed: it waits, not offered, until the queue opens
    # The customer asked to be called back: it keeps its place (a position while it
    # waits; `opens_at` while held until its queue opens) until an agent calls.
    CALLBACK = "callback"


@dataclass(frozen=True)
class Place:
    """An inquiry's place: its queue, its position (1 = next; 0 while offered; None
    once in progress) and the expected seconds until an agent takes it (None: not
    known, the queue had no answers recently)."""

    inquiry_id: str
    state: PlaceState
    queue: str
    position: int | None
    estimated_wait_s: float | None
    # Held (its queue closed): when the queue opens (None: no opening in sight), and
    # the hours' timezone to say it in.
    opens_at: float | None = None
    timezone: str = ""
    # The channels (e.g. "voice") its queue offers a callback while closed (held only).
    callback_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueFigures:
    """One queue's figures for customers and channels."""

    name: str
    open: bool
    opens_at: float | None
    depth: int
    oldest_wait_s: float
    estimated_wait_s: float | None
    offered: int
    in_progress: int
    callbacks: int = 0


def find_place(snapshot: queue_pb2.QueueSnapshot, inquiry_id: str) -> Place | None:
    """The inquiry's place in `snapshot`; None when it is not listed."""
    place = _find_place(snapshot, inquiry_id)
    if place is None or place.state not in (PlaceState.WAITING, PlaceState.HELD):
        return place
    if any(inquiry_id in queue.callback_ids for queue in snapshot.queues):
        return replace(place, state=PlaceState.CALLBACK)
    return place


def _find_place(snapshot: queue_pb2.QueueSnapshot, inquiry_id: str) -> Place | None:
    for queue in snapshot.queues:
        for index, listed in enumerate(queue.waiting_ids):
            if listed == inquiry_id:
                wait = estimated_wait(index + 1, queue.service_rate_per_s)
                return Place(inquiry_id, PlaceState.WAITING, queue.name, index + 1, wait)
        if inquiry_id in queue.offered_ids:
            return Place(inquiry_id, PlaceState.OFFERED, queue.name, 0, 0.0)
        if inquiry_id in queue.in_progress_ids:
            return Place(inquiry_id, PlaceState.IN_PROGRESS, queue.name, None, 0.0)
    closed = held(snapshot, inquiry_id)
    if closed is not None:
        return Place(
            inquiry_id,
            PlaceState.HELD,
            closed.queue,
            None,
            None,
            closed.opens_at,
            closed.timezone,
            closed.callback_channels,
        )
    return None


def unlisted_waiting(snapshot: queue_pb2.QueueSnapshot) -> bool:
    """Whether some queue has more inquiries waiting than the snapshot lists."""
    return any(q.waiting > len(q.waiting_ids) for q in snapshot.queues)


def queue_figures(snapshot: queue_pb2.QueueSnapshot) -> list[QueueFigures]:
    """Every queue of the workspace.

    `open` is false while the queue's business hours keep it closed;
    `opens_at` is then its next opening (None: none in sight).
    """
    return [
        QueueFigures(
            name=q.name,
            open=not q.closed,
            opens_at=seconds(q.opens_at) if q.closed and q.HasField("opens_at") else None,
            depth=q.waiting,
            oldest_wait_s=q.oldest_wait_s,
            estimated_wait_s=None if q.estimated_wait_s < 0 else q.estimated_wait_s,
            offered=q.offered,
            in_progress=q.in_progress,
            callbacks=q.callbacks,
        )
        for q in snapshot.queues
    ]


def _minutes(wait_s: float) -> str:
    minutes = max(1, round(wait_s / 60))
    return "about 1 minute" if minutes == 1 else f"about {minutes} minutes"


def describe(place: Place | None) -> str:
    """What to tell the customer (IVR speech, chat system message)."""
    if place is None:
        return "Thank you for waiting. An agent will be with you as soon as possible."
    if place.state is PlaceState.CALLBACK:
        return describe_callback(place.position)
    if place.state is PlaceState.HELD:
        return describe_closed(Closed(place.queue, place.opens_at, place.timezone))
    if place.state is not PlaceState.WAITING:
        return "An agent is being connected to you now."
    ahead = "You are next in line." if place.position == 1 else f"You are number {place.position} in line."  # fmt: skip
    if place.estimated_wait_s is None:
        return f"{ahead} An agent will be with you as soon as possible."
    return f"{ahead} The estimated wait is {_minutes(place.estimated_wait_s)}."


def describe_callback(position: int | None) -> str:
    """What to tell a customer who asked to be called back."""
    where = f" You are number {position} in line." if position else ""
    return f"We will call you back; you keep your place in line.{where}"


def offers_callback(place: Place | None, channel: str) -> bool:
    """Whether the answer offers the customer on `channel` a callback up front: held
    in a closed queue whose policy for the channel is `callback`."""
    return (
        place is not None and place.state is PlaceState.HELD and channel in place.callback_channels
    )


class QueueView:
    """The latest queue snapshot of each workspace, as long as it is fresh."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.board = SnapshotBoard()
        self.max_age_s = max_age_s
        self.clock = clock

    def fresh(self, workspace: str) -> queue_pb2.QueueSnapshot | None:
        """The workspace's snapshot, unless it is older than `max_age_s` (or missing)."""
        snapshot = self.board.latest.get(workspace)
        if snapshot is None or self.clock() - seconds(snapshot.taken_at) > self.max_age_s:
            return None
        return snapshot

    def known(self, workspace: str) -> bool:
        """Whether any snapshot of the workspace was ever read (fresh or not)."""
        return workspace in self.board.latest

    async def wait_place(self, workspace: str, inquiry_id: str, timeout_s: float) -> Place | None:
        """The inquiry's place, waiting up to `timeout_s` for a snapshot that lists it."""
        deadline = self.clock() + timeout_s
        snapshot = self.fresh(workspace)
        while True:
            if snapshot is not None:
                place = find_place(snapshot, inquiry_id)
                if place is not None:
                    return place
            left = deadline - self.clock()
            if left <= 0:
                return None
            after = seconds(snapshot.taken_at) if snapshot is not None else 0.0
            newer = await self.board.next(workspace, after, left)
            if newer is None:
                return None
            snapshot = newer
