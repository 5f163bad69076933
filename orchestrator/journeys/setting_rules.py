"""Start-up checks of the delivery settings that have a syntax of their own, so a typo in
``STEPMAIL_SEND_WINDOW`` (or the others) stops the process with the variable's name."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.customers.addresses import mailto_address
from orchestrator.journeys.frequency_cap import parse_frequency_cap
from orchestrator.journeys.send_window import parse_quiet_days, parse_send_window

_PARSERS: dict[str, Callable[[str], object]] = {
    "send_window": parse_send_window,
    "quiet_days": parse_quiet_days,
    "frequency_cap": parse_frequency_cap,
    "unsubscribe_mailto": mailto_address,
}


def check_delivery_setting(name: str, value: str | None) -> str | None:
    """Return ``value`` unchanged (blank means unset) if it parses; ValueError otherwise."""
    if value is None or not value.strip():
        return None if name != "quiet_days" else ""
    _PARSERS[name](value)
    return value
