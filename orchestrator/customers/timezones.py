"""IANA time-zone names, checked against the tz database so a typo is refused at the door."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA zone; raise ValueError otherwise."""
    if name not in _known_zones():
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Tokyo)")
    return name


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for ``name``, falling back to UTC for a name the database lost."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


_ZONES: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES
