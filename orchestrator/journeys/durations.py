"""Human durations in journey files: ``0d``, ``3d``, ``36h``, ``1d 12h``, ``90m``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+)\s*([wdhm])")
_WHOLE = re.compile(r"^\s*(\d+\s*[wdhm]\s*)+$")
_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
MAX_DURATION = timedelta(days=3660)  # ten years: every moment plus it stays in the calendar


def parse_duration(value: Any) -> timedelta:
    """Parse ``"1d 12h"`` into a timedelta; refuse anything else, showing the expected form."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not _WHOLE.match(value):
        raise ValueError(
            f"expected a duration such as '3d', '12h', '1d 6h' or '90m', got {value!r}"
        )
    minutes = sum(int(amount) * _MINUTES[unit] for amount, unit in _PART.findall(value))
    if minutes > MAX_DURATION.total_seconds() // 60:
        raise ValueError(f"duration {value!r} is longer than {MAX_DURATION.days} days")
    return timedelta(minutes=minutes)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in the largest whole units."""
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0d"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
