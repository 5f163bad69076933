"""The pure half of pacing: which send window and quiet days apply to a journey, and the
deferral to the next opening, with an explicit ``now``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from orchestrator.journeys.deferral import Deferral, deferral_reason, send_rules, window_deferral
from orchestrator.journeys.model import Journey
from orchestrator.journeys.send_window import parse_send_window

TOKYO = ZoneInfo("Asia/Tokyo")
STEPS = [{"id": "welcome", "after": "0d", "template": "t"}]


def journey(**fields: object) -> Journey:
    return Journey.model_validate({"id": "j", "name": "J", "steps": STEPS, **fields})


def test_the_journeys_window_wins_over_the_installations() -> None:
    window, quiet = send_rules("Mon-Fri 09:00-18:00", "", journey(send_window="Sat 10:00-12:00"))
    assert window == parse_send_window("Sat 10:00-12:00")
    assert quiet == frozenset()


def test_quiet_days_add_up() -> None:
    _, quiet = send_rules(None, "2026-12-31", journey(quiet_days=["2027-01-01"]))
    assert quiet == frozenset({date(2026, 12, 31), date(2027, 1, 1)})


def test_without_any_window_every_moment_is_open() -> None:
    window, quiet = send_rules(None, "", journey())
    assert window is None
    assert window_deferral(window, quiet, TOKYO, datetime(2026, 11, 7, 3, tzinfo=UTC)) is None


def test_inside_the_window_nothing_is_deferred() -> None:
    window = parse_send_window("Mon-Fri 09:00-18:00")
    monday_ten_in_tokyo = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    assert window_deferral(window, frozenset(), TOKYO, monday_ten_in_tokyo) is None


def test_outside_it_the_send_waits_for_the_next_opening() -> None:
    window = parse_send_window("Mon-Fri 09:00-18:00")
    saturday_noon_in_tokyo = datetime(2026, 11, 7, 3, 0, tzinfo=UTC)
    deferral = window_deferral(window, frozenset(), TOKYO, saturday_noon_in_tokyo)
    monday_nine_in_tokyo = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)
    assert deferral is not None and deferral.wake_at == monday_nine_in_tokyo
    assert deferral.reason.startswith("deferred until 2026-11-09T00:00:00+00:00: ")


def test_a_quiet_day_defers_to_the_next_day_open() -> None:
    monday = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    deferral = window_deferral(None, frozenset({date(2026, 11, 2)}), TOKYO, monday)
    assert deferral is not None
    assert deferral.wake_at == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # Tuesday 00:00 Tokyo


def test_the_reason_names_the_moment_in_utc() -> None:
    moment = datetime(2026, 11, 9, 9, 0, tzinfo=TOKYO)
    assert deferral_reason(moment, "why") == "deferred until 2026-11-09T00:00:00+00:00: why"
    assert Deferral(moment, "r").wake_at == moment
