"""Queue controls inside the routing core: business hours and overflow.

`QueueControls` is the part of a `WorkspaceRouter` that knows the queues'
hours and overflow rules. It is plain synchronous Python, time passed in,
and the core calls it at a few points only:

- `index` / `unindex`, whenever the core indexes an inquiry: it keeps, per
  queue with overflow rules, the waiting inquiries in the order they entered
  the queue, and the held inquiries (arrived while their queue was closed)
  in the order their queue opens;
- `arrival`, when an inquiry is admitted: where it goes if its queue is
  closed (held, or to the after-hours queue);
- `answered`, when an inquiry is answered: the queue's answer rate, behind
  the estimated wait;
- `due_held` and `overflow`, once per tick: the held inquiries whose queue
  opened, and the moves the overflow rules ask for.

Each costs what it returns (plus a look at each queue with rules), never
the length of a queue: time-ordered structures, and each queue's open or
closed state cached until it next changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedList

from omniroute.waits import ServiceRate, estimated_wait
from omniroute_router import overflow
from omniroute_router.config import Queue, WorkspaceConfig
from omniroute_router.hours import ClosedPolicy, OpenState, state_at
from omniroute_router.model import InquiryState, QueuedInquiry
from omniroute_router.overflow import RATE_WINDOW_S, Move

ALWAYS_OPEN = OpenState(True, math.inf)
# Most inquiries one tick examines for overflow in one queue (the rest next tick).
OVERFLOW_PER_TICK = 1000


@dataclass(frozen=True)
class Arrival:
    """Where a newly admitted inquiry goes."""

    queue: Queue
    # Held until its queue opens at this time (inf: no opening in sight); None: not held.
    held_until: float | None = None
    # The closed queue's policy that applied (None: the queue was open).
    policy: ClosedPolicy | None = None
    closed_queue: str = ""


class QueueControls:
    """Hours and overflow of one workspace's queues, and the indexes they need."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.queues: dict[str, Queue] = {}
        self._states: dict[str, tuple[float, OpenState]] = {}  # queue -> (computed at, state)
        self._waiting: dict[str, SortedList] = {}  # queue with rules -> (queued_at, id)
        self._held = SortedList()  # (opens at, id)
        self._held_at: dict[str, float] = {}  # id -> opens at
        self._held_in: dict[str, dict[str, None]] = {}  # queue -> held ids, in arrival order
        self._rates: dict[str, ServiceRate] = {}  # queue with rules -> its service rate
        self.configure(config)

    def configure(self, config: WorkspaceConfig) -> None:
        """New queues (a reload): the caller re-indexes its inquiries afterwards."""
        self.queues = {q.name: q for q in config.queues}
        self._states.clear()
        self._waiting = {q.name: SortedList() for q in config.queues if q.overflow}
        self._held.clear()
        self._held_at.clear()
        self._held_in.clear()

    # -- hours ----------------------------------------------------------------

    def state(self, queue: str, now: float) -> OpenState:
        """Whether `queue` is open at `now` and until when (cached until it changes)."""
        q = self.queues.get(queue)
        if q is None or q.hours is None:
            return ALWAYS_OPEN
        cached = self._states.get(queue)
        # A clock that stepped back is before the cached state: compute afresh.
        if cached is not None and cached[0] <= now and cached[1].holds_at(now):
            return cached[1]
        fresh = state_at(q.hours, now)
        self._states[queue] = (now, fresh)
        return fresh

    def arrival(self, channel: str, queue: Queue, now: float) -> Arrival:
        """Where an inquiry on `channel` that the match rules put in `queue` goes now.

        An open queue takes it. A closed one applies its policy for the
        channel: `after_hours_queue` sends it on (whose own hours then apply,
        never in a circle), `hold` and `callback` hold it until the queue
        opens (with `callback`, ingest's answer offers the customer a callback).
        """
        first: ClosedPolicy | None = None
        closed = ""
        seen: set[str] = set()
        while True:
            state = self.state(queue.name, now)
            if state.open:
                return Arrival(queue, None, first, closed)
            assert queue.hours is not None  # only queues with hours close
            policy = queue.hours.policy(channel)
            if first is None:
                first, closed = policy, queue.name
            seen.add(queue.name)
            target = self.queues.get(queue.hours.after_hours_queue)
            if (
                policy is ClosedPolicy.AFTER_HOURS
                and target is not None
                and target.name not in seen
            ):
                queue = target
                continue
            return Arrival(queue, state.until, first, closed)

    def due_held(self, now: float) -> list[str]:
        """Held inquiries whose queue has opened by `now`, in the order they fall due."""
        due = []
        while self._held and self._held[0][0] <= now:
            inquiry_id = self._held[0][1]
            due.append(inquiry_id)
            self._drop_held(inquiry_id)  # the core unindexes it as it releases it
        return due

    # -- overflow -------------------------------------------------------------

    def answered(self, queue: str, now: float) -> None:
        """An inquiry of `queue` was answered (the estimated wait's service rate)."""
        if queue in self._waiting:
            self._rate(queue, now).record(now)

    def estimated_wait(self, queue: str, position: int, now: float) -> float | None:
        """Estimated wait at `position` in `queue` (None: unknown); queues with overflow rules."""
        rate = self._rates.get(queue)
        return estimated_wait(position, rate.rate(now) if rate else 0.0)

    def _rate(self, queue: str, now: float) -> ServiceRate:
        found = self._rates.get(queue)
        if found is None:
            found = self._rates[queue] = ServiceRate(RATE_WINDOW_S, now)
        return found

    def overflow(self, now: float, may_move: Callable[[str, str], bool]) -> list[tuple[str, Move]]:
        """(from queue, move) for every move the overflow rules ask for now.

        A closed queue takes no overflow; `may_move(inquiry_id, to)` can bar one
        inquiry (the core bars queues it already left).
        """
        moves: list[tuple[str, Move]] = []
        for name, line in self._waiting.items():
            rate = self._rate(name, now)
            rate.observe(now, len(line))  # backlogged time: the rate's denominator
            if not line:
                continue
            planned = overflow.plan(
                self.queues[name].overflow,
                lambda line=line: iter(line),  # type: ignore[misc]
                lambda line=line: reversed(line),  # type: ignore[misc]
                len(line),
                rate.rate(now),
                now,
                may_enter=lambda to: self.state(to, now).open,
                may_move=may_move,
                limit=OVERFLOW_PER_TICK,
            )
            moves.extend((name, move) for move in planned)
        return moves

    # -- indexes --------------------------------------------------------------

    def index(self, inquiry: QueuedInquiry) -> None:
        """The core indexed `inquiry` (not one waiting for agent-state's word)."""
        if inquiry.state is InquiryState.HELD:
            self._held.add((inquiry.due_at, inquiry.id))
            self._held_at[inquiry.id] = inquiry.due_at
            self._held_in.setdefault(inquiry.queue, {})[inquiry.id] = None
        elif inquiry.state is InquiryState.WAITING:
            line = self._waiting.get(inquiry.queue)
            if line is not None:
                line.add((inquiry.queued_at, inquiry.id))

    def unindex(self, inquiry: QueuedInquiry) -> None:
        """The core unindexed `inquiry` (its state, queue or times are about to change)."""
        self._drop_held(inquiry.id)
        held = self._held_in.get(inquiry.queue)
        if held is not None:
            held.pop(inquiry.id, None)
        line = self._waiting.get(inquiry.queue)
        if line is not None:
            line.discard((inquiry.queued_at, inquiry.id))

    def held_in(self, queue: str) -> Iterator[str]:
        """The inquiries held in `queue`, in the order they were held."""
        return iter(self._held_in.get(queue, {}))

    def _drop_held(self, inquiry_id: str) -> None:
        at = self._held_at.pop(inquiry_id, None)
        if at is not None:
            self._held.discard((at, inquiry_id))
