"""Customers who arrive late (an import, a backdated signup, an event that came in late), on
SQLite and PostgreSQL: the journey's ``catch_up`` policy, and a step's ``expires_after`` so a
mail meant for "right after" is never sent days late."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.delivery import run_due
from tests.support.environment import START, FixedDraw, make_settings
from tests.support.usage import API_KEY, event, post_events
from tests.support.versions import FLOW, change_flow, enroll, enrollment_of, flow_folders, rows_of

EIGHT_DAYS_AGO = START - timedelta(days=8)
ON_EVENT = """\
name: Flow
grace: 7d
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
  - id: praise
    on_event: report_created
    expires_after: 1d
    template: onboarding/next_steps
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    journeys, templates = flow_folders(tmp_path)
    return make_settings(
        tmp_path, database_url, journeys_dir=journeys, templates_dir=templates, api_key=API_KEY
    )


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    yield runtime
    runtime.close()


def test_by_default_a_late_customer_skips_what_is_past_the_grace(runtime: Runtime) -> None:
    customer = enroll(runtime, signed_up_at=EIGHT_DAYS_AGO)
    assert {step: row.state for step, row in rows_of(runtime, customer).items()} == {
        "welcome": "missed",
        "basics": "missed",
        "faq": "missed",
        "legacy_tips": "missed",
    }


def test_send_first_sends_the_welcome_to_a_late_customer_now(runtime: Runtime) -> None:
    change_flow(runtime, FLOW.replace("grace: 24h\n", "grace: 24h\ncatch_up: send_first\n"))
    customer = enroll(runtime, signed_up_at=EIGHT_DAYS_AGO)
    rows = rows_of(runtime, customer)
    assert rows["welcome"].state == "pending" and rows["welcome"].due_at == START
    assert "catch_up: send_first" in rows["welcome"].reason
    assert {rows[s].state for s in ("basics", "faq", "legacy_tips")} == {"missed"}
    assert run_due(runtime) == ["sent"]


def test_compress_starts_the_schedule_now_keeping_the_gaps(runtime: Runtime) -> None:
    change_flow(runtime, FLOW.replace("grace: 24h\n", "grace: 24h\ncatch_up: compress\n"))
    customer = enroll(runtime, signed_up_at=EIGHT_DAYS_AGO)
    rows = rows_of(runtime, customer)
    assert {step: row.due_at - START for step, row in rows.items()} == {
        "welcome": timedelta(0),
        "basics": timedelta(days=2),
        "faq": timedelta(days=3),
        "legacy_tips": timedelta(days=6),
    }
    assert {row.state for row in rows.values()} == {"pending"}
    assert enrollment_of(runtime, customer).anchor_at == START


def test_an_on_time_customer_is_not_moved_by_catch_up(runtime: Runtime) -> None:
    change_flow(runtime, FLOW.replace("grace: 24h\n", "grace: 24h\ncatch_up: compress\n"))
    customer = enroll(runtime, signed_up_at=START - timedelta(hours=2))
    assert enrollment_of(runtime, customer).anchor_at == START - timedelta(hours=2)


def test_an_event_step_past_its_expiry_is_missed_not_sent_late(
    runtime: Runtime, clock: FrozenClock
) -> None:
    change_flow(runtime, ON_EVENT)
    late = enroll(runtime, "late", signed_up_at=START - timedelta(days=5))
    fresh = enroll(runtime, "fresh", signed_up_at=START - timedelta(days=5))
    with TestClient(create_app(runtime)) as client:
        answer = post_events(
            client,
            event("late", "report_created", at=START - timedelta(days=3)),
            event("fresh", "report_created", at=START - timedelta(hours=12)),
        )
        assert answer.status_code < 300, answer.text
    expired = rows_of(runtime, late)["praise"]
    assert expired.state == "missed" and "expired when its event came" in expired.reason
    assert rows_of(runtime, fresh)["praise"].state == "pending"
    run_due(runtime)
    assert rows_of(runtime, fresh)["praise"].state == "sent"


def test_a_step_held_by_the_send_window_past_its_expiry_is_missed(
    runtime: Runtime, clock: FrozenClock
) -> None:
    windowed = FLOW.replace("grace: 24h\n", "grace: 24h\nsend_window: Mon-Fri 09:00-18:00\n")
    change_flow(
        runtime,
        windowed.replace(
            "    after: 6d\n    template: onboarding/next_steps\n",
            "    after: 5d\n    expires_after: 12h\n    template: onboarding/next_steps\n",
        ),
    )
    customer = enroll(runtime)
    clock.advance(timedelta(days=5))  # Saturday: the window opens on Monday, 47h later
    run_due(runtime)
    row = rows_of(runtime, customer)["legacy_tips"]
    assert row.state == "missed" and row.reason.startswith("expired:")
