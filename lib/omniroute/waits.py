"""The estimated wait in a queue: one method for the router, ingest and the simulator.

An inquiry at position k of a queue (1 = offered next) waits until k
inquiries of the queue, its own included, have left the line to an agent.
While inquiries wait, every agent who can take them is busy, and inquiries
leave the line at the rate agents finish work, so the expected wait is

    estimated_wait = k / r

where r is the queue's service rate *while backlogged*: answers (first offer
accepted) that came while inquiries of the queue were waiting, per second
of the time they were waiting, over a sliding window. This is the Erlang C
result for a customer who finds k - 1 others ahead in an M/M/c queue (k
exponential inter-departure times at the rate c·mu of c busy agents), with
c·mu measured instead of configured, so it follows staffing, breaks, shared
agents, skills and handle times as they are. Counting only backlogged time
matters: over time when the line is empty, answers follow arrivals, not the
agents' capacity, and a plain answers-per-second rate makes estimates far too
long for queues that are usually short. Until the window holds
`MIN_BACKLOG_S` of backlog, the plain rate is used (an over-estimate).
Known biases left: priorities let later arrivals overtake, abandons shorten
the wait of those behind, and staffing changes take a window to show. The
simulator measures the error (`make bench-wait`, figures in the README).
"""

from __future__ import annotations

from collections import deque

#: The shortest span the fallback rate is measured over, so a few answers just
#: after a start (or a takeover of the queue) do not make a huge rate.
MIN_SPAN_S = 60.0
#: The least backlogged time in the window before the backlog rate is used.
MIN_BACKLOG_S = 30.0


def estimated_wait(position: int, rate_per_s: float) -> float | None:
    """Expected seconds until the inquiry at `position` (1 = next) is answered.

    None when the rate is not known (nothing answered recently).
    """
    if rate_per_s <= 0 or position < 1:
        return None
    return position / rate_per_s


class ServiceRate:
    """One queue's answers per second while inquiries waited, over a sliding window.

    Time is passed in. `observe` is told how many wait now (the router: every
    tick); `record` counts an answer. `started` is when counting began: the
    fallback rate is over the time since then (at least `MIN_SPAN_S`) until a
    whole window has passed.
    """

    def __init__(self, window_s: float, started: float) -> None:
        self.window_s = window_s
        self.started = started
        self._answers: deque[float] = deque()  # every answer
        self._backlog_answers: deque[float] = deque()  # answers while inquiries waited
        self._backlogs: deque[tuple[float, float]] = deque()  # (from, to) with inquiries waiting
        self._backlog_since: float | None = None

    def observe(self, now: float, waiting: int) -> None:
        """`waiting` inquiries of the queue wait for an agent at `now`."""
        if waiting > 0 and self._backlog_since is None:
            self._backlog_since = now
        elif waiting <= 0 and self._backlog_since is not None:
            self._backlogs.append((self._backlog_since, now))
            self._backlog_since = None
        self._forget(now)

    def record(self, now: float) -> None:
        """One inquiry of the queue answered at `now`."""
        self._answers.append(now)
        if self._backlog_since is not None:
            self._backlog_answers.append(now)
        self._forget(now)

    def rate(self, now: float) -> float:
        """Answers per second while backlogged (or, with too little backlog, overall)."""
        self._forget(now)
        edge = now - self.window_s
        backlog = sum(to - max(edge, begun) for begun, to in self._backlogs)
        if self._backlog_since is not None:
            backlog += now - max(edge, self._backlog_since)
        if backlog >= MIN_BACKLOG_S and self._backlog_answers:
            return len(self._backlog_answers) / backlog
        if not self._answers:
            return 0.0
        span = min(self.window_s, max(MIN_SPAN_S, now - self.started))
        return len(self._answers) / span

    def _forget(self, now: float) -> None:
        edge = now - self.window_s
        for times in (self._answers, self._backlog_answers):
            while times and times[0] <= edge:
                times.popleft()
        while self._backlogs and self._backlogs[0][1] <= edge:
            self._backlogs.popleft()
