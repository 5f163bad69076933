"""The clocks: a frozen one moves only when told, and its monotonic reading never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from orchestrator.clock import FrozenClock, SystemClock

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def test_a_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(START)
    assert clock.now() == START and clock.monotonic() == 0.0
    clock.advance(timedelta(seconds=1.5))
    assert clock.now() == START + timedelta(seconds=1.5)
    assert clock.monotonic() == 1.5


def test_setting_it_back_does_not_turn_monotonic_time_back() -> None:
    clock = FrozenClock(START)
    clock.set(START + timedelta(hours=1))
    assert clock.monotonic() == 3600.0
    clock.set(START)
    assert clock.now() == START and clock.monotonic() == 3600.0
    clock.set(START + timedelta(seconds=10))
    assert clock.monotonic() == 3610.0


def test_moments_are_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    clock = FrozenClock(datetime(2026, 11, 2, 10, 0, tzinfo=tokyo))
    assert clock.now() == START and clock.now().tzinfo == UTC
    assert FrozenClock(datetime(2026, 11, 2, 1, 0)).now() == START  # naive: read as UTC


def test_the_system_clock_is_aware_and_monotonic() -> None:
    clock = SystemClock()
    assert clock.now().tzinfo == UTC
    first = clock.monotonic()
    assert clock.monotonic() >= first
