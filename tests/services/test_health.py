"""Health score on the real pipeline: band actions with their cool-down, and the daily
recompute that reads only what moved."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, health_actions, health_score_history
from orchestrator.health.daily import DailyReport
from orchestrator.health.loader import load_health
from orchestrator.health.score import score
from orchestrator.runtime import Runtime
from orchestrator.scheduling.periodic import claim_window, finish_window
from orchestrator.services.health import run_daily_health, run_daily_if_due
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import STANDARD_JOURNEYS, START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, enrollment_rows, event, post_events

DEFINITION = load_health(STANDARD_JOURNEYS / "health.yaml")
KEY_FEATURES = ("report_created", "workflow_created", "integration_connected", "teammate_invited")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def thriving(external_id: str, nps: int) -> list[dict[str, Any]]:
    """Ten logins, every key feature and an NPS: 100 with a 10, 75 with a 0."""
    logins = [event(external_id, "login", id=f"login-{i}") for i in range(10)]
    features = [event(external_id, name, id=name) for name in KEY_FEATURES]
    return [*logins, *features, nps_event(external_id, nps, "nps-0")]


def nps_event(external_id: str, score: int, event_id: str) -> dict[str, Any]:
    return event(external_id, "nps_submitted", id=event_id, properties={"score": score})


def actions(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(health_actions.c.band, health_actions.c.action).order_by(health_actions.c.id)
        )
        return [(band, action) for band, action in rows]


def test_band_entry_fires_each_action_once_and_the_cooldown_holds_a_wobbling_score(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(
        client, signup_payload("wobbly", signed_up_at=(START - timedelta(days=30)).isoformat())
    )
    post_events(client, *thriving("wobbly", nps=10))  # 100: upsell
    post_events(client, nps_event("wobbly", 0, "nps-1"))  # 75: tips
    post_events(client, nps_event("wobbly", 10, "nps-2"))  # upsell again, within the week
    post_events(client, nps_event("wobbly", 0, "nps-3"))  # tips again
    clock.advance(timedelta(days=8))
    post_events(client, nps_event("wobbly", 10, "nps-4"))  # upsell, a week later

    assert actions(runtime) == [
        ("upsell", "mail:health_upsell"),
        ("tips", "mail:health_tips"),
        ("upsell", "mail:health_upsell"),
    ]
    with runtime.engine.connect() as connection:
        history = connection.execute(
            select(health_score_history.c.score).order_by(health_score_history.c.id)
        ).scalars()
        assert list(history) == [100, 75, 100, 75, 100]
        latest = connection.execute(select(customers.c.health_score, customers.c.health_band)).one()
    assert tuple(latest) == (100, "upsell")
    journeys = [e.journey_id for e in enrollment_rows(runtime) if e.journey_id != "onboarding"]
    assert journeys == ["health_upsell", "health_tips", "health_upsell"]
    assert run_due(runtime).count("sent") >= 1  # the latest upsell mail goes through the pipeline


def test_no_band_actions_in_the_first_days(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("newbie"))
    post_events(client, event("newbie", "login"))
    assert actions(runtime) == []
    with runtime.engine.connect() as connection:
        assert connection.execute(select(customers.c.health_band)).scalar() == "at_risk"


def test_the_daily_job_reads_only_the_events_that_left_a_window(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    for name in ("moving", "still"):
        post_signup(
            client, signup_payload(name, signed_up_at=(START - timedelta(days=60)).isoformat())
        )
    at = clock.now() - timedelta(days=13, hours=12)
    post_events(client, *[event("moving", "login", at, id=f"m{i}") for i in range(10)])
    post_events(client, event("still", "report_created", clock.now() - timedelta(days=20)))
    clock.advance(timedelta(days=1))

    report = run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())
    assert report.candidates == 1 and report.rows_examined == 10
    with runtime.engine.connect() as connection:
        scores = dict(
            (external_id, score)
            for external_id, score in connection.execute(
                select(customers.c.external_id, customers.c.health_score)
            )
        )
        computed = connection.execute(select(func.count()).select_from(health_score_history))
        assert computed.scalar() == 3  # moving twice (on arrival, then daily), still once
    assert scores["moving"] < 50 and scores["still"] is not None


def test_a_customer_who_never_used_the_product_is_pulled_in_when_the_first_days_end(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    """No event ever moves a silent customer's score; the day band actions become allowed
    is when they are first scored with actions: at risk, a CSM task and a follow-up mail."""
    for name, days_ago in (("silent", 13), ("newer", 12), ("older", 20)):
        signed_up_at = clock.now() - timedelta(days=days_ago, hours=12)
        post_signup(client, signup_payload(name, signed_up_at=signed_up_at.isoformat()))
    clock.advance(timedelta(days=1))  # silent: 14 days and 12 hours since signup

    report = run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())

    assert (report.newly_actionable, report.candidates, report.rows_examined) == (1, 1, 0)
    fired = [("at_risk", "csm_task"), ("at_risk", "mail:health_follow_up")]
    assert actions(runtime) == fired
    with runtime.engine.connect() as connection:
        scored = dict(
            connection.execute(select(customers.c.external_id, customers.c.health_band)).all()
        )
    assert scored == {"silent": "at_risk", "newer": None, "older": None}
    assert [row.journey_id for row in enrollment_rows(runtime)][-1] == "health_follow_up"
    again = run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())
    assert again.task_ids == [] and actions(runtime) == fired  # the same window again: no repeat


def daily_if_due(runtime: Runtime, now: datetime) -> DailyReport | None:
    rules = runtime.usage_rules()
    return run_daily_if_due(runtime.engine, rules=rules, now=now, notify=runtime.notify_now)


def test_the_scheduled_daily_job_runs_once_a_day_and_catches_up_after_an_outage(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(
        client, signup_payload("moving", signed_up_at=(START - timedelta(days=60)).isoformat())
    )
    at = clock.now() - timedelta(days=13, hours=12)
    post_events(client, *[event("moving", "login", at, id=f"m{i}") for i in range(10)])

    first = daily_if_due(runtime, clock.now())
    assert first is not None and first.candidates == 0  # covers the last day: nothing left yet
    assert daily_if_due(runtime, clock.now() + timedelta(hours=23)) is None  # not due

    clock.advance(timedelta(days=3))  # an outage: the job did not run for three days
    caught_up = daily_if_due(runtime, clock.now())
    assert caught_up is not None and caught_up.candidates == 1  # the logins left the window
    assert daily_if_due(runtime, clock.now()) is None


def test_two_schedulers_never_claim_the_same_window(runtime: Runtime, clock: FrozenClock) -> None:
    now = clock.now()
    first = claim_window(runtime.engine, "job", timedelta(days=1), now, timedelta(hours=1))
    second = claim_window(runtime.engine, "job", timedelta(days=1), now, timedelta(hours=1))
    assert first is not None and second is None
    later = now + timedelta(hours=2)  # the first claimant died: its claim lapses
    taken_over = claim_window(runtime.engine, "job", timedelta(days=1), later, timedelta(hours=1))
    assert taken_over is not None and taken_over.since == first.since
    finish_window(runtime.engine, "job", taken_over)
    assert claim_window(runtime.engine, "job", timedelta(days=1), later, timedelta(hours=1)) is None


@pytest.mark.parametrize("answer", ["nan", "NaN", "inf", "-Infinity", "1e999", 10**400])
def test_an_nps_answer_that_is_no_finite_number_counts_as_no_answer(
    client: TestClient, runtime: Runtime, answer: object
) -> None:
    """A property is the sender's text: "nan" or "inf" reads as a float, and a huge integer
    does not fit one. Scored as a missing answer (the health file's ``missing``), never a
    500 that leaves the customer's events unstored."""
    post_signup(client, signup_payload("odd"))
    response = client.post(
        "/v1/events",
        content=(
            '{"external_id": "odd", "name": "nps_submitted", "id": "nps-odd", '
            f'"properties": {{"score": {json.dumps(answer)}}}}}'
        ),
        headers={**AUTH, "content-type": "application/json"},
    )
    if isinstance(answer, int):  # the API bounds numbers: a 4xx naming the property
        assert response.status_code == 422, response.text
        assert "score" in response.text
        return
    assert response.status_code == 202, response.text
    with runtime.engine.connect() as connection:
        stored = connection.execute(select(customers.c.health_score)).scalar()
    assert stored == score(DEFINITION, {}).score  # NPS missing: 0.5 of its weight
