"""Moments, durations and numbers as a reader of each UI language expects them (Babel's CLDR
data): a moment is always shown in a named time zone with its offset, so "10:00" is never
ambiguous between the operator and the customer."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime
from babel.numbers import format_decimal

_PATTERNS = {"ja": "yyyy/MM/dd(E) HH:mm xxx", "en": "EEE, MMM d, yyyy HH:mm xxx"}
_SHORT = {"ja": "MM/dd HH:mm", "en": "MMM d HH:mm"}
_UNITS = {"ja": ("日", "時間", "分"), "en": ("d", "h", "min")}


def zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def moment(value: datetime | None, language: str, tz: ZoneInfo, *, short: bool = False) -> str:
    if value is None:
        return "—"
    patterns = _SHORT if short else _PATTERNS
    return format_datetime(
        value, patterns.get(language, patterns["en"]), tzinfo=tz, locale=language
    )


def duration(value: timedelta, language: str) -> str:
    """``3d 4h`` / ``3日4時間``; zero is ``0``."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    day, hour, minute = _UNITS.get(language, _UNITS["en"])
    parts = [f"{n}{unit}" for n, unit in ((days, day), (hours, hour), (minutes, minute)) if n]
    joiner = "" if language == "ja" else " "
    return joiner.join(parts) or "0"


def number(value: int | float | Decimal | None, language: str) -> str:
    if value is None:
        return "—"
    return format_decimal(value, locale=language)
