"""Send windows and quiet days, in the recipient's local time: pure functions of explicit datetimes.

A window reads ``"Mon-Fri 09:00-18:00"`` or ``"09:00-18:00"`` (every day). Days are a comma list
of names or ranges (``"Mon,Wed,Fri"``, ``"Fri-Mon"`` wraps); a window whose end is before its
start crosses midnight (``"22:00-06:00"``) and belongs to the day it opens; ``24:00`` ends a day.
Quiet days are local dates on which nothing goes out at all.

Openness only changes at a window's start, its end or midnight, so the next opening is the first
of those moments (converted through the zone, DST included) at which the window is open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
SEARCH_DAYS = 800  # quiet days may close many openings in a row; beyond this, give up
_DAY_RANGE = r"[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?"
_WINDOW = re.compile(
    rf"^\s*(?:(?P<days>{_DAY_RANGE}(?:\s*,\s*{_DAY_RANGE})*)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
WINDOW_EXAMPLE = "expected e.g. 'Mon-Fri 09:00-18:00' or '09:00-18:00'"


@dataclass(frozen=True)
class SendWindow:
    """Weekdays (0 = Monday) on which the window opens, and its local start and end in minutes."""

    days: frozenset[int]
    start: int
    end: int  # < start: the window crosses midnight; 1440 is 24:00

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start


@lru_cache(maxsize=256)
def parse_send_window(text: str) -> SendWindow:
    """Parse a window; ValueError naming the expected form for anything else."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"invalid send window {text!r}: {WINDOW_EXAMPLE}")
    start, end = _minutes(match["start"], text), _minutes(match["end"], text)
    if start == 1440:
        raise ValueError(f"invalid send window {text!r}: a window cannot start at 24:00")
    if start == end:
        raise ValueError(f"invalid send window {text!r}: it is empty (start equals end)")
    days = _days(match["days"], text) if match["days"] else ALL_DAYS
    return SendWindow(days=days, start=start, end=end)


def parse_quiet_days(text: str | Iterable[date]) -> frozenset[date]:
    """``"2026-12-31, 2027-01-01"`` (or dates already parsed) as a set of dates."""
    if not isinstance(text, str):
        return frozenset(text)
    days: set[date] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(
                f"invalid quiet day {part!r}: expected an ISO date like 2026-12-31"
            ) from None
    return frozenset(days)


def is_open(
    window: SendWindow | None, quiet_days: frozenset[date], zone: ZoneInfo, moment: datetime
) -> bool:
    """Whether a mail may go out at ``moment`` for a recipient living in ``zone``."""
    local = moment.astimezone(zone)
    if local.date() in quiet_days:
        return False
    if window is None:
        return True
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if not window.crosses_midnight:
        return today in window.days and window.start <= minute < window.end
    return (today in window.days and minute >= window.start) or (
        yesterday in window.days and minute < window.end
    )


def next_opening(
    window: SendWindow | None, quiet_days: frozenset[date], zone: ZoneInfo, moment: datetime
) -> datetime | None:
    """``moment`` itself if open, else the first later moment the window opens (UTC).

    Never early: a local start that a DST jump skips opens at the jump. None when no opening
    exists within :data:`SEARCH_DAYS` days (every opening day is quiet).
    """
    moment = moment.astimezone(UTC)
    if is_open(window, quiet_days, zone, moment):
        return moment
    for candidate in _boundaries(window, zone, moment):
        if candidate > moment and is_open(window, quiet_days, zone, candidate):
            return candidate
    return None


def why_closed(
    window: SendWindow | None, quiet_days: frozenset[date], zone: ZoneInfo, moment: datetime
) -> str:
    """Why ``moment`` is closed, for a send's reason: a quiet day, or outside the window."""
    local = moment.astimezone(zone)
    if local.date() in quiet_days:
        return f"quiet day {local.date().isoformat()} in {zone.key}"
    return f"outside the send window {format_window(window)} in {zone.key}"


def format_window(window: SendWindow | None) -> str:
    """The canonical spelling, e.g. ``"Mon,Tue,Wed,Thu,Fri 09:00-18:00"``."""
    if window is None:
        return "00:00-24:00"
    days = "" if window.days == ALL_DAYS else _format_days(window.days) + " "
    return f"{days}{_clock(window.start)}-{_clock(window.end)}"


def _boundaries(window: SendWindow | None, zone: ZoneInfo, moment: datetime) -> Iterator[datetime]:
    """Every local midnight and window start from the day before ``moment`` on, in order."""
    first = moment.astimezone(zone).date() - timedelta(days=1)
    start = window.start if window is not None else 0
    for offset in range(SEARCH_DAYS):
        day = first + timedelta(days=offset)
        yield earliest_instant(datetime.combine(day, time()), zone)
        if start:
            yield earliest_instant(datetime.combine(day, _as_time(start)), zone)


def earliest_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the wall clock in ``zone`` reads ``local`` or later.

    An ambiguous time (DST ends) is its first occurrence; a time skipped by a DST jump maps to
    the jump itself, never to the hour before.
    """
    naive = local.replace(tzinfo=None)
    utc = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # the skipped time, read late
    low, high = min(low, utc), max(low, utc)
    while high - low > timedelta(seconds=1):  # the jump lies between: find it by halving
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _minutes(clock: str, text: str) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"invalid send window {text!r}: {clock} is not a time of day")
    return hours * 60 + minutes


def _days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        names = [name.strip().lower() for name in part.split("-")]
        unknown = [name for name in names if name not in DAY_NAMES]
        if unknown:
            raise ValueError(
                f"invalid send window {text!r}: unknown day {unknown[0]!r} (use Mon … Sun)"
            )
        first, last = DAY_NAMES.index(names[0]), DAY_NAMES.index(names[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def _as_time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _format_days(days: frozenset[int]) -> str:
    return ",".join(DAY_NAMES[day].capitalize() for day in sorted(days))
