"""IANA time-zone names, checked against the tz database so a typo is refused at the door.

``zoneinfo.available_timezones()`` lists every TZif file under the system's zoneinfo folder,
which on Debian includes ``localtime`` (a link to ``/etc/localtime``: the *server's* zone, not
a name), and the tz database's ``Factory`` (a placeholder that reads "local time zone must be
set"). Neither is a zone a customer lives in, so a name must also be in the tz database's own
list of zones (the ``tzdata`` package, a dependency) and not be one of those two.
"""

from __future__ import annotations

from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


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
        _ZONES = frozenset(available_timezones() & _tz_database_names()) - NOT_ZONES
    return _ZONES


def _tz_database_names() -> set[str]:
    """The zone and link names of the tz database (the ``tzdata`` package's ``zones`` file)."""
    try:
        text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is a dependency
        return set(available_timezones())
    return set(text.split())
