"""Automation steps aside when the relationship ended or just changed: a cancelled customer
gets no health action, no mail of a journey entered on an event, and no more drip mails; a
customer who just converted is not entered in event journeys; each unless ``even_if`` says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import csm_tasks, customers, enrollments
from orchestrator.runtime import Runtime
from orchestrator.services.health import run_daily_health
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import START, make_settings
from tests.support.journeys import journey_text, standard_with
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events, send_states

NEWS = """\
name: News
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
  - id: later
    after: 2d
    template: onboarding/basics
"""
LOYAL_NEWS = NEWS.replace("name: News", "name: Loyal news\neven_if: [cancelled]")
TRIAL_END = """\
name: Trial ending
trigger: trial_will_end
steps:
  - id: reminder
    after: 0d
    template: onboarding/faq
"""
TRIAL_END_EVEN_IF = TRIAL_END.replace("name: Trial ending", "name: Trial end\neven_if: [converted]")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(
        tmp_path / "journeys",
        {
            "news.yaml": journey_text("news", NEWS),
            "loyal_news.yaml": journey_text("loyal_news", LOYAL_NEWS),
            "trial_end.yaml": journey_text("trial_end", TRIAL_END),
            "trial_end_anyway.yaml": journey_text("trial_end_anyway", TRIAL_END_EVEN_IF),
        },
    )
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def customer_ids(runtime: Runtime) -> dict[str, int]:
    with runtime.engine.connect() as connection:
        return dict(connection.execute(select(customers.c.external_id, customers.c.id)).all())


def journeys_of(runtime: Runtime, external_id: str) -> dict[str, str]:
    """journey id → state of the customer's enrollments."""
    query = (
        select(enrollments.c.journey_id, enrollments.c.state)
        .join(customers, customers.c.id == enrollments.c.customer_id)
        .where(customers.c.external_id == external_id)
    )
    with runtime.engine.connect() as connection:
        return dict(connection.execute(query).all())


def task_kinds(runtime: Runtime, external_id: str) -> list[str]:
    query = (
        select(csm_tasks.c.kind)
        .join(customers, customers.c.id == csm_tasks.c.customer_id)
        .where(customers.c.external_id == external_id)
    )
    with runtime.engine.connect() as connection:
        return sorted(connection.execute(query).scalars())


def day_14_health_job(runtime: Runtime, clock: FrozenClock) -> None:
    """Both customers' first 14 days end: never having used the product, they are at risk."""
    clock.set(START + timedelta(days=14, hours=1))
    run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())


def test_a_customer_who_cancelled_on_day_2_gets_no_at_risk_task_or_mail_on_day_14(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("gone"))
    post_signup(client, signup_payload("stays"))
    clock.set(START + timedelta(days=2))
    assert post_events(client, event("gone", "subscription_cancelled")).status_code == 202

    day_14_health_job(runtime, clock)
    run_due(runtime)

    assert task_kinds(runtime, "stays") == ["health_at_risk"]
    assert "health_follow_up" in journeys_of(runtime, "stays")
    assert task_kinds(runtime, "gone") == []
    assert "health_follow_up" not in journeys_of(runtime, "gone")
    assert journeys_of(runtime, "gone")["onboarding"] == "exited"  # its exit event
    ids = customer_ids(runtime)
    assert send_states(runtime, "health_follow_up") == {(ids["stays"], "follow_up"): "sent"}


def test_a_cancellation_by_patch_is_recorded_as_the_event_and_undone_by_reactivation(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("gone"))
    clock.set(START + timedelta(days=2))
    patched = client.patch("/v1/customers/gone", json={"cancelled": True}, headers=AUTH)
    assert patched.status_code == 200
    assert patched.json()["cancelled_at"] is not None
    assert journeys_of(runtime, "gone")["onboarding"] == "exited"

    day_14_health_job(runtime, clock)
    assert task_kinds(runtime, "gone") == []

    again = client.patch("/v1/customers/gone", json={"cancelled": False}, headers=AUTH)
    assert again.status_code == 200 and again.json()["cancelled_at"] is None
    refused = client.patch("/v1/customers/gone", json={"cancelled": None}, headers=AUTH)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "cancelled"]


def test_drip_mails_stop_at_a_cancellation_unless_the_journey_says_even_if_cancelled(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("gone"))
    run_due(runtime)
    clock.set(START + timedelta(days=1))
    post_events(client, event("gone", "subscription_cancelled"))
    clock.set(START + timedelta(days=2))
    run_due(runtime)

    cid = customer_ids(runtime)["gone"]
    assert send_states(runtime, "news")[(cid, "later")] == "skipped"
    assert send_states(runtime, "loyal_news")[(cid, "later")] == "sent"


def test_a_customer_who_just_converted_is_not_entered_on_an_event_unless_the_journey_says_so(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("upgraded"))
    post_signup(client, signup_payload("trial"))
    clock.set(START + timedelta(days=3))
    post_events(client, event("upgraded", "subscription_upgraded"))  # the onboarding's goal
    clock.set(START + timedelta(days=4))
    post_events(client, event("upgraded", "trial_will_end"), event("trial", "trial_will_end"))

    assert journeys_of(runtime, "upgraded")["onboarding"] == "converted"
    assert "trial_end" not in journeys_of(runtime, "upgraded")
    assert "trial_end_anyway" in journeys_of(runtime, "upgraded")
    assert {"trial_end", "trial_end_anyway"} <= set(journeys_of(runtime, "trial"))

    clock.set(START + timedelta(days=40))  # no longer "just" converted
    post_events(client, event("upgraded", "trial_will_end", id="later"))
    assert "trial_end" in journeys_of(runtime, "upgraded")


def test_a_cancellation_in_the_same_batch_as_a_detractor_answer_opens_no_task(
    client: TestClient, runtime: Runtime
) -> None:
    """The batch's customers are read once, under their lock, before the journeys react; a
    cancellation recorded by that reaction is seen by the signals after it (read again)."""
    post_signup(client, signup_payload("gone", tier="high"))
    post_signup(client, signup_payload("stays", tier="high"))
    detractor = {"score": 2}
    response = post_events(
        client,
        event("gone", "subscription_cancelled", id="c"),
        event("gone", "nps_submitted", id="n", properties=detractor),
        event("stays", "nps_submitted", id="n2", properties=detractor),
    )
    assert response.status_code == 202
    assert task_kinds(runtime, "gone") == []
    assert task_kinds(runtime, "stays") == ["nps_detractor"]
