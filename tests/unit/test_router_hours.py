"""Business hours: open or closed at an instant in the queue's timezone, DST, holidays."""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from omniroute_router.hours import (
    ClosedPolicy,
    Hours,
    check_day,
    is_open,
    next_open,
    parse_interval,
    state_at,
)

NY = ZoneInfo("America/New_York")
MADRID = ZoneInfo("Europe/Madrid")
NINE_TO_FIVE = ((9 * 60, 17 * 60),)


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=zone, fold=fold).timestamp()  # type: ignore[misc]


def weekdays(*intervals: tuple[int, int]) -> tuple[tuple[tuple[int, int], ...], ...]:
    return (tuple(intervals),) * 5 + ((), ())


def test_intervals_parse_with_over_midnight_and_end_of_day() -> None:
    assert parse_interval("08:00-18:00") == (480, 1080)
    assert parse_interval("22:00-06:00") == (1320, 1800)
    assert parse_interval("00:00-24:00") == (0, 1440)
    assert parse_interval(" 09:30 - 12:15 ") == (570, 735)
    for bad in ("8-18", "08:00", "25:00-26:00", "08:60-09:00", "24:00-06:00", "a:bc-10:00"):
        with pytest.raises(ValueError):
            parse_interval(bad)
    with pytest.raises(ValueError, match="overlap"):
        check_day((parse_interval("08:00-12:00"), parse_interval("11:00-13:00")))


def test_open_on_weekdays_in_the_queue_timezone_not_utc() -> None:
    hours = Hours(timezone="America/New_York", weekly=weekdays(*NINE_TO_FIVE))
    # Monday 2026-11-23, 09:00 New York is 14:00 UTC.
    assert not is_open(hours, at(NY, 2026, 11, 23, 8, 59))
    assert is_open(hours, at(NY, 2026, 11, 23, 9, 0))
    assert is_open(hours, at(NY, 2026, 11, 23, 16, 59))
    assert not is_open(hours, at(NY, 2026, 11, 23, 17, 0))
    # Saturday closed; the next opening is Monday 09:00 local.
    saturday = at(NY, 2026, 11, 28, 12, 0)
    state = state_at(hours, saturday)
    assert not state.open and state.until == at(NY, 2026, 11, 30, 9, 0)
    assert next_open(hours, saturday) == at(NY, 2026, 11, 30, 9, 0)
    # Open: the state holds until closing time.
    assert state_at(hours, at(NY, 2026, 11, 23, 10, 0)).until == at(NY, 2026, 11, 23, 17, 0)
    assert next_open(hours, at(NY, 2026, 11, 23, 10, 0)) == at(NY, 2026, 11, 23, 10, 0)


def test_daylight_saving_keeps_local_opening_times() -> None:
    hours = Hours(timezone="America/New_York", weekly=((NINE_TO_FIVE,) * 7))
    # 2026-03-08: clocks go forward at 02:00 (EST -5 -> EDT -4).
    before = state_at(hours, at(NY, 2026, 3, 7, 20, 0))
    assert before.until == at(NY, 2026, 3, 8, 9, 0)
    assert datetime.fromtimestamp(before.until, NY).hour == 9
    assert before.until - at(NY, 2026, 3, 7, 9, 0) == 23 * 3600  # a short day
    # 2026-11-01: clocks go back at 02:00.
    assert at(NY, 2026, 11, 1, 9, 0) - at(NY, 2026, 10, 31, 9, 0) == 25 * 3600
    assert next_open(hours, at(NY, 2026, 10, 31, 18, 0)) == at(NY, 2026, 11, 1, 9, 0)


def test_an_interval_in_the_spring_gap_starts_after_it() -> None:
    # Opening at 02:30 on the night 02:00-03:00 does not exist: opens at 03:30 EDT.
    hours = Hours(timezone="America/New_York", weekly=(((150, 300),),) * 7)
    opening = next_open(hours, at(NY, 2026, 3, 8, 0, 0))
    assert opening == at(NY, 2026, 3, 8, 3, 30)
    assert not is_open(hours, at(NY, 2026, 3, 8, 3, 15))
    assert is_open(hours, at(NY, 2026, 3, 8, 4, 0))


def test_overnight_intervals_and_the_night_across_the_autumn_change() -> None:
    night = Hours(timezone="Europe/Madrid", weekly=(((22 * 60, 30 * 60),),) * 7)
    assert is_open(night, at(MADRID, 2026, 6, 2, 23, 0))
    assert is_open(night, at(MADRID, 2026, 6, 3, 5, 59))
    assert not is_open(night, at(MADRID, 2026, 6, 3, 6, 0))
    # Madrid goes back from 03:00 to 02:00 on 2026-10-25: that night lasts 9 hours.
    state = state_at(night, at(MADRID, 2026, 10, 24, 23, 0))
    assert state.open
    assert state.until - at(MADRID, 2026, 10, 24, 22, 0) == 9 * 3600
    # 02:30 happens twice that night; both are open.
    assert is_open(night, at(MADRID, 2026, 10, 25, 2, 30, fold=0))
    assert is_open(night, at(MADRID, 2026, 10, 25, 2, 30, fold=1))


def test_round_the_clock_is_one_open_period() -> None:
    always = Hours(timezone="UTC", weekly=(((0, 1440),),) * 7)
    state = state_at(always, at(ZoneInfo("UTC"), 2026, 1, 1, 0, 0))
    assert state.open and state.until > at(ZoneInfo("UTC"), 2026, 12, 31, 0, 0)


def test_holidays_close_and_short_days_replace_the_weekly_hours() -> None:
    hours = Hours(
        timezone="Europe/Madrid",
        weekly=weekdays(*NINE_TO_FIVE),
        exceptions={date(2026, 12, 25): (), date(2026, 12, 24): ((9 * 60, 13 * 60),)},
    )
    assert not is_open(hours, at(MADRID, 2026, 12, 25, 10, 0))  # Friday, a holiday
    assert is_open(hours, at(MADRID, 2026, 12, 24, 12, 0))
    assert not is_open(hours, at(MADRID, 2026, 12, 24, 14, 0))
    # From the short day's close the next opening skips the holiday and the weekend.
    assert next_open(hours, at(MADRID, 2026, 12, 24, 14, 0)) == at(MADRID, 2026, 12, 28, 9, 0)
    # A dated opening on a weekend day.
    sunday = Hours(
        timezone="Europe/Madrid", weekly=weekdays(), exceptions={date(2026, 12, 27): NINE_TO_FIVE}
    )
    assert next_open(sunday, at(MADRID, 2026, 12, 1, 0, 0)) == at(MADRID, 2026, 12, 27, 9, 0)


def test_a_queue_that_never_opens_says_so() -> None:
    never = Hours(timezone="UTC")
    state = state_at(never, 0.0)
    assert not state.open and math.isinf(state.until)
    assert next_open(never, 0.0) is None
    assert state.holds_at(1e12)


def test_the_closed_policy_per_channel_with_a_default() -> None:
    hours = Hours(
        when_closed={"voice": ClosedPolicy.CALLBACK, "chat": ClosedPolicy.AFTER_HOURS},
        default_policy=ClosedPolicy.HOLD,
        after_hours_queue="night",
    )
    assert hours.policy("voice") is ClosedPolicy.CALLBACK
    assert hours.policy("chat") is ClosedPolicy.AFTER_HOURS
    assert hours.policy("email") is ClosedPolicy.HOLD
