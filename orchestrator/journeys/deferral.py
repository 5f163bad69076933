"""Whether ``now`` is open for a recipient: the send window and quiet days that apply to a
journey, and the deferral to the next opening. Pure; the frequency cap, which reads the
store, is applied by :mod:`orchestrator.delivery.pacing`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from orchestrator.journeys.model import Journey
from orchestrator.journeys.send_window import (
    SEARCH_DAYS,
    SendWindow,
    next_opening,
    parse_quiet_days,
    parse_send_window,
    why_closed,
)


@dataclass(frozen=True)
class Deferral:
    """A send that should go, but not yet: when to look again and why."""

    wake_at: datetime
    reason: str


def deferral_reason(wake_at: datetime, why: str) -> str:
    return f"deferred until {wake_at.astimezone(UTC).isoformat()}: {why}"


def send_rules(
    installation_window: str | None, installation_quiet_days: str, journey: Journey
) -> tuple[SendWindow | None, frozenset[date]]:
    """The window that applies (the journey's, else the installation's) and every quiet day."""
    text = journey.send_window or installation_window
    window = parse_send_window(text) if text else None
    return window, _quiet_days(installation_quiet_days) | frozenset(journey.quiet_days)


def window_deferral(
    window: SendWindow | None, quiet: frozenset[date], local_zone: ZoneInfo, now: datetime
) -> Deferral | None:
    """Pure: None when ``now`` is open for this recipient, else a deferral to the next opening."""
    opening = next_opening(window, quiet, local_zone, now)
    if opening == now:
        return None
    why = why_closed(window, quiet, local_zone, now)
    if opening is None:  # every opening for years is a quiet day: look again much later
        later = now + timedelta(days=SEARCH_DAYS)
        return Deferral(later, deferral_reason(later, f"no opening in {SEARCH_DAYS} days, {why}"))
    return Deferral(opening, deferral_reason(opening, why))


@lru_cache(maxsize=16)
def _quiet_days(text: str) -> frozenset[date]:
    return parse_quiet_days(text)
