"""Send windows and quiet days: pure functions, explicit datetimes, DST zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from orchestrator.journeys.send_window import (
    earliest_instant,
    format_window,
    is_open,
    next_opening,
    parse_quiet_days,
    parse_send_window,
    why_closed,
)

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = parse_send_window("Mon-Fri 09:00-18:00")
NONE: frozenset[date] = frozenset()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("Mon-Fri 09:00-18:00", {0, 1, 2, 3, 4}, 540, 1080),
        ("09:00-18:00", set(range(7)), 540, 1080),
        ("sat,Sun 10:30-12:00", {5, 6}, 630, 720),
        ("Fri-Mon 9:00-24:00", {4, 5, 6, 0}, 540, 1440),
        ("Mon,Wed-Thu 22:00-06:00", {0, 2, 3}, 1320, 360),
    ],
)
def test_window_syntax(text: str, days: set[int], start: int, end: int) -> None:
    window = parse_send_window(text)
    assert (set(window.days), window.start, window.end) == (days, start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon-Fri", "expected e.g. 'Mon-Fri 09:00-18:00'"),
        ("Mon-Fry 09:00-18:00", "unknown day 'fry'"),
        ("09:00-25:00", "25:00 is not a time of day"),
        ("09:60-10:00", "09:60 is not a time of day"),
        ("09:00-09:00", "empty"),
        ("24:00-06:00", "cannot start at 24:00"),
        ("", "expected e.g."),
    ],
)
def test_a_bad_window_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_send_window(text)


def test_quiet_days_parse_and_refuse_non_dates() -> None:
    assert parse_quiet_days("2026-12-31, 2027-01-01,") == {date(2026, 12, 31), date(2027, 1, 1)}
    assert parse_quiet_days("") == frozenset()
    with pytest.raises(ValueError, match="invalid quiet day '12/31'"):
        parse_quiet_days("12/31")


def test_inside_the_window_is_now() -> None:
    moment = local(TOKYO, 2026, 11, 2, 10, 0)  # Monday 10:00 in Tokyo
    assert next_opening(WEEKDAYS, NONE, TOKYO, moment) == moment


def test_three_in_the_morning_waits_for_nine_in_the_recipients_zone() -> None:
    three_am = local(TOKYO, 2026, 11, 3, 3, 0)  # Tuesday
    assert next_opening(WEEKDAYS, NONE, TOKYO, three_am) == local(TOKYO, 2026, 11, 3, 9, 0)
    # The same instant is 13:00 on Monday in New York: inside the window there.
    assert next_opening(WEEKDAYS, NONE, NEW_YORK, three_am) == three_am


def test_the_end_is_exclusive_and_friday_evening_waits_for_monday() -> None:
    assert not is_open(WEEKDAYS, NONE, TOKYO, local(TOKYO, 2026, 11, 6, 18, 0))
    assert is_open(WEEKDAYS, NONE, TOKYO, local(TOKYO, 2026, 11, 6, 17, 59, 59))
    friday_evening = local(TOKYO, 2026, 11, 6, 18, 0)
    assert next_opening(WEEKDAYS, NONE, TOKYO, friday_evening) == local(TOKYO, 2026, 11, 9, 9, 0)
    saturday_noon = local(TOKYO, 2026, 11, 7, 12, 0)
    assert next_opening(WEEKDAYS, NONE, TOKYO, saturday_noon) == local(TOKYO, 2026, 11, 9, 9, 0)


def test_quiet_days_close_the_whole_local_date() -> None:
    holidays = frozenset({date(2026, 11, 3)})  # 文化の日, a Tuesday
    monday_evening = local(TOKYO, 2026, 11, 2, 19, 0)
    assert next_opening(WEEKDAYS, holidays, TOKYO, monday_evening) == local(
        TOKYO, 2026, 11, 4, 9, 0
    )
    # Without a window, a quiet day opens again at the next local midnight.
    assert next_opening(None, holidays, TOKYO, local(TOKYO, 2026, 11, 3, 8, 0)) == local(
        TOKYO, 2026, 11, 4, 0, 0
    )
    assert why_closed(None, holidays, TOKYO, local(TOKYO, 2026, 11, 3, 8, 0)) == (
        "quiet day 2026-11-03 in Asia/Tokyo"
    )


def test_a_year_of_quiet_mondays_finds_no_opening() -> None:
    mondays_only = parse_send_window("Mon 09:00-10:00")
    every_monday = frozenset(
        date.fromordinal(date(2026, 11, 2).toordinal() + 7 * i) for i in range(200)
    )
    assert next_opening(mondays_only, every_monday, TOKYO, local(TOKYO, 2026, 11, 2, 8, 0)) is None


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens() -> None:
    nights = parse_send_window("Fri 22:00-06:00")
    assert is_open(nights, NONE, TOKYO, local(TOKYO, 2026, 11, 6, 23, 0))  # Friday night
    assert is_open(nights, NONE, TOKYO, local(TOKYO, 2026, 11, 7, 5, 59))  # Saturday early
    assert not is_open(nights, NONE, TOKYO, local(TOKYO, 2026, 11, 7, 6, 0))
    assert not is_open(nights, NONE, TOKYO, local(TOKYO, 2026, 11, 6, 5, 0))  # Thursday's night
    assert next_opening(nights, NONE, TOKYO, local(TOKYO, 2026, 11, 7, 6, 0)) == local(
        TOKYO, 2026, 11, 13, 22, 0
    )


def test_a_quiet_day_cuts_a_night_window_at_midnight_and_it_resumes_after() -> None:
    nights = parse_send_window("Mon-Sun 22:00-06:00")
    quiet = frozenset({date(2026, 11, 3)})
    moment = local(TOKYO, 2026, 11, 2, 23, 30)
    assert is_open(nights, quiet, TOKYO, moment)
    assert not is_open(nights, quiet, TOKYO, local(TOKYO, 2026, 11, 3, 1, 0))
    # Tuesday is quiet from midnight; Tuesday's night window continues into Wednesday.
    assert next_opening(nights, quiet, TOKYO, local(TOKYO, 2026, 11, 3, 1, 0)) == local(
        TOKYO, 2026, 11, 4, 0, 0
    )


def test_new_york_across_the_spring_dst_change() -> None:
    # 2027-03-14: clocks jump from 02:00 EST to 03:00 EDT. 09:00 is 14:00 UTC before, 13:00 after.
    saturday_night = local(NEW_YORK, 2027, 3, 13, 20, 0)
    assert next_opening(WEEKDAYS, NONE, NEW_YORK, saturday_night) == utc(2027, 3, 15, 13, 0)
    friday_early = local(NEW_YORK, 2027, 3, 12, 7, 0)
    assert next_opening(WEEKDAYS, NONE, NEW_YORK, friday_early) == utc(2027, 3, 12, 14, 0)


def test_a_start_time_skipped_by_dst_opens_at_the_jump_never_before() -> None:
    window = parse_send_window("02:30-04:00")
    opening = next_opening(window, NONE, NEW_YORK, local(NEW_YORK, 2027, 3, 14, 0, 0))
    assert opening == utc(2027, 3, 14, 7, 0)  # 03:00 EDT, the first instant at or after 02:30
    assert opening is not None and opening.astimezone(NEW_YORK).hour == 3
    assert earliest_instant(datetime(2027, 3, 14, 2, 30), NEW_YORK) == utc(2027, 3, 14, 7, 0)


def test_an_hour_repeated_by_dst_opens_at_its_first_occurrence() -> None:
    # 2026-11-01: 01:00-02:00 happens twice in New York (EDT, then EST).
    window = parse_send_window("01:30-03:00")
    opening = next_opening(window, NONE, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 0, 0))
    assert opening == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert is_open(window, NONE, NEW_YORK, utc(2026, 11, 1, 6, 45))  # 01:45 EST, still open


def test_the_canonical_spelling() -> None:
    assert format_window(WEEKDAYS) == "Mon,Tue,Wed,Thu,Fri 09:00-18:00"
    assert format_window(parse_send_window("09:00-24:00")) == "09:00-24:00"
    assert why_closed(WEEKDAYS, NONE, TOKYO, local(TOKYO, 2026, 11, 7, 9, 0)) == (
        "outside the send window Mon,Tue,Wed,Thu,Fri 09:00-18:00 in Asia/Tokyo"
    )
