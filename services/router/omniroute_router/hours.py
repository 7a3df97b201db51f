"""Business hours: whether a queue is open at a moment, and when it opens or closes next.

Plain data and pure functions: no clock (times are seconds since the epoch,
passed in), no I/O. A queue's hours are weekly opening intervals in its own
timezone plus dated exceptions (holidays, short days) that replace the
weekly hours of their date.

Wall-clock times are turned into instants with `zoneinfo`, so daylight
saving time is handled as people read a timetable: "08:00-18:00" opens at
08:00 local time on both sides of a change, and the day of the change is
an hour shorter or longer. A time that does not exist (inside the spring
gap, e.g. 02:30 on the night clocks go forward) is read with the offset in
force before the change, i.e. as the same wall time an hour later (03:30);
a time that happens twice (autumn) means its first occurrence.

An interval whose end is at or before its start runs over midnight
("22:00-06:00": from 22:00 until 06:00 the next morning); it belongs to the
day it starts on, so a holiday closes the night that starts on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for an opening: a year and a bit covers any weekly
# timetable and every dated exception of the coming year.
HORIZON_DAYS = 400

Interval = tuple[int, int]  # minutes after local midnight; end may pass 1440 (overnight)


class ClosedPolicy(StrEnum):
    """What happens to an inquiry that arrives while its queue is closed."""

    HOLD = "hold"  # waits, not offered, until the queue opens (SLA clock starts then)
    AFTER_HOURS = "after_hours_queue"  # goes to the queue's after-hours queue instead
    # Held like HOLD, and voice and chat customers are offered a callback in
    # ingest's closed answer; one taken keeps the place (callbacks.py). Other
    # channels cannot be called back: just held.
    CALLBACK = "callback"


@dataclass(frozen=True)
class Hours:
    """A queue's opening hours in its timezone."""

    timezone: str = "UTC"
    # Opening intervals per weekday, Monday first; an empty tuple: closed all day.
    weekly: tuple[tuple[Interval, ...], ...] = ((),) * 7
    # Dated exceptions: the intervals of that date instead (empty: closed).
    exceptions: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    # Per channel what happens to arrivals while closed; channels not listed: `default`.
    when_closed: Mapping[str, ClosedPolicy] = field(default_factory=dict)
    default_policy: ClosedPolicy = ClosedPolicy.HOLD
    after_hours_queue: str = ""

    def policy(self, channel: str) -> ClosedPolicy:
        """The closed-queue policy for an inquiry on `channel`."""
        return self.when_closed.get(channel, self.default_policy)


@dataclass(frozen=True)
class OpenState:
    """Whether a queue is open now, and until when that stays so."""

    open: bool
    until: float  # next opening (closed) or closing (open); inf: never changes in sight

    def holds_at(self, t: float) -> bool:
        """Whether this state is still valid at `t` (a cache can keep it until then)."""
        return t < self.until


def parse_interval(text: str) -> Interval:
    """ "08:00-18:00" -> (480, 1080); "22:00-06:00" -> (1320, 1800); "00:00-24:00" -> all day.

    Raises ValueError with a readable reason.
    """
    try:
        start_text, end_text = text.split("-")
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}") from None
    start, end = _minutes(start_text.strip(), text), _minutes(end_text.strip(), text)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"an interval cannot start at 24:00 ({text!r})")
    if end <= start:
        end += MINUTES_PER_DAY  # over midnight
    return start, end


def _minutes(hhmm: str, whole: str) -> int:
    hh, sep, mm = hhmm.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ValueError(f"expected HH:MM-HH:MM, got {whole!r}")
    hours, minutes = int(hh), int(mm)
    if hours == 24 and minutes == 0:
        return MINUTES_PER_DAY
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ValueError(f"{hhmm!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def check_day(intervals: tuple[Interval, ...]) -> None:
    """Raise ValueError when a day's intervals overlap (they must be given in order)."""
    for (_, end), (start, _) in pairwise(intervals):
        if start < end:
            raise ValueError("intervals must be in order and must not overlap")


def state_at(hours: Hours, t: float) -> OpenState:
    """Whether the queue is open at `t`, and when that next changes."""
    for start, end in _merged(hours, t):
        if end <= t:
            continue
        if start <= t:
            return OpenState(True, end)
        return OpenState(False, start)
    return OpenState(False, math.inf)


def is_open(hours: Hours, t: float) -> bool:
    """Whether the queue is open at `t`."""
    return state_at(hours, t).open


def next_open(hours: Hours, t: float) -> float | None:
    """When the queue is next open at or after `t` (`t` itself when open); None: never in sight."""
    state = state_at(hours, t)
    if state.open:
        return t
    return None if math.isinf(state.until) else state.until


def intervals_of(hours: Hours, day: date) -> tuple[Interval, ...]:
    """The opening intervals that start on local date `day`."""
    if day in hours.exceptions:
        return hours.exceptions[day]
    return hours.weekly[day.weekday()]


def _instants(hours: Hours, t: float) -> Iterator[tuple[float, float]]:
    """Opening intervals as instants, in order, from the local day before `t`'s onwards."""
    zone = ZoneInfo(hours.timezone)
    today = datetime.fromtimestamp(t, zone).date()
    # From the day before: its overnight interval may still be open.
    for offset in range(-1, HORIZON_DAYS):
        day = today + timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        for start, end in intervals_of(hours, day):
            yield (
                (midnight + timedelta(minutes=start)).timestamp(),
                (midnight + timedelta(minutes=end)).timestamp(),
            )


def _merged(hours: Hours, t: float) -> Iterator[tuple[float, float]]:
    """`_instants` with touching or overlapping intervals joined (24/7 is one interval)."""
    current: tuple[float, float] | None = None
    for start, end in _instants(hours, t):
        if end <= start:
            continue  # e.g. 02:00-03:00 on the night the clocks skip that hour
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current
