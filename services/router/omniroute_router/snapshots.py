"""The wallboard's queue figures: a snapshot per workspace per tick on a topic.

Every tick, for every workspace it owns, the router publishes a
`QueueSnapshot` (proto/omniroute/v1/queue.proto) on `queue-snapshots`, keyed
by workspace: per queue the inquiries waiting, the oldest wait, offers open,
tasks in progress, follow-ups scheduled, and today's service level (answered,
and answered within the channel's target); for a queue with business hours,
whether it is closed, its next opening or closing (and timezone), and the
inquiries held until it opens (and the channels offered a callback then). Today's counts live in a Faust
table, so they survive a restart and move with the workspace's partition.
Days are UTC days.

For ingest's answers to customers ("you are number 3, about 2 minutes"), each
queue also carries its waiting ids in the order the router offers them, the
ids offered and in progress (each list at most `positions_limit` long), its
callbacks not yet offered (count and ids), its service rate while inquiries waited (told the depth every tick) and the
estimated wait of a newcomer (`omniroute.waits`). The rates are measured in memory by the owner of the
workspace: after a restart or a move they start again, and the estimate is
unknown (-1) until the queue's first answer.

`build_snapshot` is pure (state and time in, message out); `QueueSnapshots`
is the adapter's part: the table and the topic.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from omniroute.codec import encode, timestamp
from omniroute.v1 import queue_pb2
from omniroute.waits import ServiceRate, estimated_wait
from omniroute_router.callbacks import REALTIME
from omniroute_router.hours import ClosedPolicy
from omniroute_router.model import InquiryState
from omniroute_router.routing import WorkspaceRouter

# Most held inquiry ids listed per queue.
HELD_IDS_LIMIT = 1000

# Table value per queue: [answered within target, answered, answered with no target].
WITHIN, ANSWERED, NO_TARGET = 0, 1, 2


def utc_day(now: float) -> str:
    """The UTC date of `now` (seconds since the epoch), YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def day_key(workspace: str, day: str) -> str:
    """The table key of one workspace's counts for one day."""
    return f"{workspace}/{day}"


def build_snapshot(
    router: WorkspaceRouter,
    answered: Mapping[str, list[int]],
    now: float,
    rates: Mapping[str, float] | None = None,
    positions_limit: int = 0,
) -> queue_pb2.QueueSnapshot:
    """The workspace's queues now; `answered` holds today's counts per queue.

    `rates` are the queues' recent answers per second (absent: 0, unknown);
    up to `positions_limit` ids per queue and state are listed.
    """
    stats = {
        name: queue_pb2.QueueStats(
            name=name,
            waiting=figures.waiting,
            oldest_wait_s=figures.oldest_wait_s,
            scheduled=figures.scheduled,
            offered=figures.offered,
            in_progress=figures.in_progress,
            refuses_transfers=not router.queues[name].accepts_transfers,
            callbacks=figures.callbacks,
        )
        for name, figures in router.queue_stats(now).items()
    }
    _list_ids(router, stats, now, positions_limit)
    _hours(router, stats, now)
    for name, counts in answered.items():
        queue = stats.get(name)
        if queue is not None and len(counts) == 3:
            queue.answered_within_target_today = counts[WITHIN]
            queue.answered_today = counts[ANSWERED]
            queue.answered_without_target_today = counts[NO_TARGET]
    snapshot = queue_pb2.QueueSnapshot(
        workspace=router.workspace,
        taken_at=timestamp(now),
        day=utc_day(now),
        queues=[stats[name] for name in router.queues],
    )
    estimate_waits(snapshot, rates or {})
    return snapshot


def estimate_waits(snapshot: queue_pb2.QueueSnapshot, rates: Mapping[str, float]) -> None:
    """Set each queue's service rate and the estimated wait of a newcomer (-1: unknown)."""
    for queue in snapshot.queues:
        queue.service_rate_per_s = rates.get(queue.name, 0.0)
        wait = estimated_wait(queue.waiting + 1, queue.service_rate_per_s)
        queue.estimated_wait_s = -1.0 if wait is None else wait


def _list_ids(
    router: WorkspaceRouter, stats: dict[str, queue_pb2.QueueStats], now: float, limit: int
) -> None:
    """Each queue's waiting ids in the order the router offers them, and its offered
    and in-progress ids, at most `limit` of each.

    The cost is bounded by `limit` and the agents' capacity, never by the queue:
    the offered and accepted are what agents hold, and the walk in routing order
    stops after `limit` waiting ids per queue in all (so a queue whose inquiries
    all rank behind that many of other queues' is listed short; ingest then
    says it cannot place them).
    """
    if limit <= 0:
        return
    for name, figures in stats.items():
        if figures.callbacks:
            figures.callback_ids.extend(router.pending_callbacks.ids(name, limit))
    for inquiry in router.held():
        queue = stats.get(inquiry.queue)
        if queue is None:
            continue
        ids = queue.offered_ids if inquiry.state is InquiryState.OFFERED else queue.in_progress_ids
        if len(ids) < limit:
            ids.append(inquiry.id)
    unfilled = {name for name, queue in stats.items() if queue.waiting}
    budget = limit * len(stats)
    for inquiry in router.waiting_in_order(now):
        budget -= 1
        if not unfilled or budget < 0:
            break
        if inquiry.queue not in unfilled:
            continue
        ids = stats[inquiry.queue].waiting_ids
        ids.append(inquiry.id)
        if len(ids) >= limit:
            unfilled.discard(inquiry.queue)


def _hours(router: WorkspaceRouter, stats: dict[str, queue_pb2.QueueStats], now: float) -> None:
    """Open or closed, the next opening or closing, and the inquiries held meanwhile."""
    for name, queue in router.queues.items():
        if queue.hours is None:
            continue
        figures = stats[name]
        state = router.controls.state(name, now)
        figures.closed = not state.open
        figures.timezone = queue.hours.timezone
        if not math.isinf(state.until):
            (figures.closes_at if state.open else figures.opens_at).CopyFrom(timestamp(state.until))
        figures.held_ids.extend(itertools.islice(router.controls.held_in(name), HELD_IDS_LIMIT))
        # The real-time channels whose customers are offered a callback while closed.
        figures.callback_channels.extend(
            channel
            for channel in sorted(REALTIME)
            if queue.hours.policy(channel) is ClosedPolicy.CALLBACK
        )


class QueueSnapshots:
    """Today's answers per queue (a Faust table or a dict), the queues' service
    rates (in memory) and the snapshot topic."""

    def __init__(
        self,
        table: MutableMapping[str, Any] | None = None,
        topic: Any = None,
        positions_limit: int = 0,
        rate_window_s: float = 900.0,
    ) -> None:
        self.table: MutableMapping[str, Any] = table if table is not None else {}
        self.topic = topic
        self.positions_limit = positions_limit
        self.rate_window_s = rate_window_s
        self.rates: dict[tuple[str, str], ServiceRate] = {}
        self._since: dict[str, float] = {}  # when each workspace's rates began

    def rate(self, workspace: str, queue: str, now: float) -> ServiceRate:
        """The service rate of one queue (started on first use)."""
        found = self.rates.get((workspace, queue))
        if found is None:
            started = self._since.setdefault(workspace, now)
            found = self.rates[workspace, queue] = ServiceRate(self.rate_window_s, started)
        return found

    def answered(self, workspace: str, queue: str, within_target: bool | None, now: float) -> None:
        """Count one answered inquiry (`within_target` None: no target for its channel)."""
        self.rate(workspace, queue, now).record(now)
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
        workspace = router.workspace
        snapshot = build_snapshot(
            router, self.today(workspace, now), now, positions_limit=self.positions_limit
        )
        # Each tick tells the rates how many wait, so they count backlogged time only.
        rates = {}
        for queue in snapshot.queues:
            rate = self.rate(workspace, queue.name, now)
            rate.observe(now, queue.waiting)
            rates[queue.name] = rate.rate(now)
        estimate_waits(snapshot, rates)
        self.topic.send_soon(key=router.workspace.encode(), value=encode(snapshot))
        return snapshot
