"""The wallboard's queue figures: a snapshot per workspace per tick on a topic.

Every tick, for every workspace it owns, the router publishes a
`QueueSnapshot` (proto/omniroute/v1/queue.proto) on `queue-snapshots`, keyed
by workspace: per queue the inquiries waiting, the oldest wait, offers open,
tasks in progress, follow-ups scheduled, and today's service level (answered,
and answered within the channel's target). Today's counts live in a Faust
table, so they survive a restart and move with the workspace's partition.
Days are UTC days.

`build_snapshot` is pure (state and time in, message out); `QueueSnapshots`
is the adapter's part: the table and the topic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from omniroute.codec import encode, timestamp
from omniroute.v1 import queue_pb2
from omniroute_router.routing import WorkspaceRouter

# Table value per queue: [answered within target, answered, answered with no target].
WITHIN, ANSWERED, NO_TARGET = 0, 1, 2


def utc_day(now: float) -> str:
    """The UTC date of `now` (seconds since the epoch), YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def day_key(workspace: str, day: str) -> str:
    """The table key of one workspace's counts for one day."""
    return f"{workspace}/{day}"


def build_snapshot(
    router: WorkspaceRouter, answered: Mapping[str, list[int]], now: float
) -> queue_pb2.QueueSnapshot:
    """The workspace's queues now; `answered` holds today's counts per queue."""
    stats = {
        name: queue_pb2.QueueStats(
            name=name,
            waiting=figures.waiting,
            oldest_wait_s=figures.oldest_wait_s,
            scheduled=figures.scheduled,
            offered=figures.offered,
            in_progress=figures.in_progress,
        )
        for name, figures in router.queue_stats(now).items()
    }
    for name, counts in answered.items():
        queue = stats.get(name)
        if queue is not None and len(counts) == 3:
            queue.answered_within_target_today = counts[WITHIN]
            queue.answered_today = counts[ANSWERED]
            queue.answered_without_target_today = counts[NO_TARGET]
    return queue_pb2.QueueSnapshot(
        workspace=router.workspace,
        taken_at=timestamp(now),
        day=utc_day(now),
        queues=[stats[name] for name in router.queues],
    )


class QueueSnapshots:
    """Today's answers per queue (a Faust table or a dict) and the snapshot topic."""

    def __init__(self, table: MutableMapping[str, Any] | None = None, topic: Any = None) -> None:
        self.table: MutableMapping[str, Any] = table if table is not None else {}
        self.topic = topic

    def answered(self, workspace: str, queue: str, within_target: bool | None, now: float) -> None:
        """Count one answered inquiry (`within_target` None: no target for its channel)."""
        key = day_key(workspace, utc_day(now))
        counts: dict[str, list[int]] = dict(self.table.get(key) or {})
        row = list(counts.get(queue) or [0, 0, 0])
        row[ANSWERED] += 1
        if within_target is None:
            row[NO_TARGET] += 1
        elif within_target:
            row[WITHIN] += 1
        counts[queue] = row
        self.table[key] = counts  # assigned, not mutated, so the changelog sees it
        # Only today's counts are shown: the day before yesterday's can go.
        self.table.pop(day_key(workspace, utc_day(now - 2 * 86400)), None)

    def today(self, workspace: str, now: float) -> dict[str, list[int]]:
        """Today's counts of a workspace per queue."""
        return dict(self.table.get(day_key(workspace, utc_day(now))) or {})

    def publish(self, router: WorkspaceRouter, now: float) -> queue_pb2.QueueSnapshot:
        """Send the workspace's snapshot, keyed by workspace (through the producer's
        buffer: a snapshot is replaced by the next one, so none waits for the broker)."""
        snapshot = build_snapshot(router, self.today(router.workspace, now), now)
        self.topic.send_soon(key=router.workspace.encode(), value=encode(snapshot))
        return snapshot
