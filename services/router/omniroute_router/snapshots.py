"""The wallboard's queue figures: a snapshot per workspace per tick on a topic.

Every tick, for every workspace it owns, the router publishes a
`QueueSnapshot` (proto/omniroute/v1/queue.proto) on `queue-snapshots`, keyed
by workspace: per queue the inquiries waiting, the oldest wait, offers open,
tasks in progress, follow-ups scheduled, and today's service level (answered,
and answered within the channel's target). Today's counts live in a Faust
table, so they survive a restart and move with the workspace's partition.
Days are UTC days.

`build_snapshot` and `add_answer` are pure (state and time in, message or
counts out); the table is read and written in `tables.py`, the adapter
publishes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from omniroute.codec import timestamp
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


def add_answer(row: list[int] | None, within_target: bool | None) -> list[int]:
    """A queue's counts for the day with one more answer (`within_target` None: the
    channel has no target)."""
    counted = list(row or [0, 0, 0])
    counted[ANSWERED] += 1
    if within_target is None:
        counted[NO_TARGET] += 1
    elif within_target:
        counted[WITHIN] += 1
    return counted
