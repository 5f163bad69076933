"""When mails go out: due steps and not before, grace and missed steps, conditions."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import START
from tests.support.signups import outbox_files, post_signup, signup_payload


def states(runtime: Runtime) -> dict[str, tuple[str, str | None]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(scheduled_sends.c.step_id, scheduled_sends.c.state, scheduled_sends.c.reason)
        )
        return {step: (state, reason) for step, state, reason in rows}


def test_each_step_goes_out_when_due_and_not_before(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    assert run_due(runtime) == ["sent"]  # day 0

    for due, step in [
        (timedelta(days=1), "basics"),
        (timedelta(days=3), "faq"),
        (timedelta(days=3, hours=4), "activation_nudge"),  # no report_created yet
        (timedelta(days=7), "case_studies"),
        (timedelta(days=30), "feedback"),
    ]:
        clock.set(START + due - timedelta(seconds=1))
        assert run_due(runtime) == [], f"{step} went out early"
        clock.set(START + due)
        assert run_due(runtime) == ["sent"], step
        assert states(runtime)[step][0] == "sent"

    assert len(outbox_files(settings)) == 6
    assert run_due(runtime) == []


def test_backdated_signup_gets_only_the_day_30_mail_a_minute_later(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    signed_up = START - timedelta(days=30) + timedelta(minutes=1)
    post_signup(client, signup_payload(signed_up_at=signed_up.isoformat()))

    assert run_due(runtime) == []
    recorded = states(runtime)
    for step in ("welcome", "basics", "faq", "case_studies"):
        assert recorded[step][0] == "missed"
        assert "grace" in (recorded[step][1] or "")
    clock.advance(timedelta(minutes=1))
    assert run_due(runtime) == ["sent"]
    assert states(runtime)["feedback"][0] == "sent"
    assert len(outbox_files(settings)) == 1


def test_a_step_overdue_past_grace_at_send_time_is_missed(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    clock.advance(timedelta(hours=24, minutes=1))  # the service was down: welcome is too late now
    results = run_due(runtime)

    assert results == ["missed", "sent"]  # welcome missed, day-1 basics due and sent
    assert states(runtime)["welcome"][0] == "missed"
    assert len(outbox_files(settings)) == 1


def test_a_slightly_late_step_within_grace_is_still_sent(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload())
    clock.advance(timedelta(hours=23))
    assert run_due(runtime) == ["sent"]
