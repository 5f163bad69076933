"""While a CSM task a journey names is open, that journey's mails to the customer are held
(``held``, with the task), the scheduler does not look at them, and closing the task releases
or cancels them as the journey says."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends, send_holds
from orchestrator.runtime import Runtime
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import START, make_settings
from tests.support.journeys import journey_text, standard_with
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

CHECKIN = """\
name: Check-in
trigger: checkin_due
reentry: always
steps:
  - id: first
    after: 0d
    template: onboarding/faq
  - id: second
    after: 1d
    template: onboarding/case_studies
"""
CANCELLING = CHECKIN.replace("name: Check-in", "name: Check-in (cancel)\non_task_closed: cancel")
UNHELD = CHECKIN.replace("name: Check-in", "name: Check-in (never held)\nhold_while_task: []")
CSM = {"csm_name": "Hanako Sato", "csm_email": "hanako@vendor.example"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(
        tmp_path / "journeys",
        {
            "checkin.yaml": journey_text("checkin", CHECKIN),
            "checkin_cancel.yaml": journey_text("checkin_cancel", CANCELLING),
            "checkin_unheld.yaml": journey_text("checkin_unheld", UNHELD),
        },
    )
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def at_risk(client: TestClient) -> dict[str, Any]:
    """A high-touch customer a month in, whose detractor score puts them at risk: the CSM gets
    an at-risk task (and a detractor one, which holds nothing by default)."""
    signed_up = (START - timedelta(days=30)).isoformat()
    post_signup(
        client,
        signup_payload("acct", annual_contract_value=3_600_000, signed_up_at=signed_up, **CSM),
    )
    post_events(client, event("acct", "nps_submitted", properties={"score": 1}))
    tasks = client.get("/v1/tasks", headers=AUTH).json()["items"]
    return next(task for task in tasks if task["kind"] == "health_at_risk")


def rows(runtime: Runtime, journey_id: str) -> dict[str, tuple[str, str | None]]:
    query = select(scheduled_sends.c.step_id, scheduled_sends.c.state, scheduled_sends.c.reason)
    query = query.where(scheduled_sends.c.journey_id == journey_id)
    with runtime.engine.connect() as connection:
        return {step: (state, reason) for step, state, reason in connection.execute(query)}


def holds(runtime: Runtime) -> list[tuple[int, str | None]]:
    with runtime.engine.connect() as connection:
        query = select(send_holds.c.task_id, send_holds.c.outcome).order_by(send_holds.c.id)
        return [(task, outcome) for task, outcome in connection.execute(query)]


def test_an_open_at_risk_task_holds_the_mails_and_closing_it_releases_them(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    task = at_risk(client)
    post_events(client, event("acct", "checkin_due", id="c1"))
    run_due(runtime)
    first = rows(runtime, "checkin")["first"]
    assert first == ("held", f"held while CSM task #{task['id']} (health_at_risk) is open")
    assert rows(runtime, "checkin_unheld")["first"][0] == "sent"

    clock.advance(timedelta(days=1))  # the second step comes due and is held too
    run_due(runtime)
    assert rows(runtime, "checkin")["second"][0] == "held"
    assert claim_due_sends(runtime.engine, clock.now(), 100, timedelta(minutes=2)) == []

    clock.advance(timedelta(days=5))  # the CSM takes their time: far past the journey's grace
    closed = client.post(f"/v1/tasks/{task['id']}/close", headers=AUTH)
    assert closed.status_code == 200
    assert rows(runtime, "checkin")["first"][0] == "pending"
    run_due(runtime)  # not missed: the grace counts from the release
    assert {step: state for step, (state, _) in rows(runtime, "checkin").items()} == {
        "first": "sent",
        "second": "sent",
    }
    assert set(holds(runtime)) == {(task["id"], "released"), (task["id"], "cancelled")}


def test_a_journey_that_says_cancel_drops_its_held_mails_when_the_task_closes(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    task = at_risk(client)
    post_events(client, event("acct", "checkin_due", id="c1"))
    run_due(runtime)
    assert rows(runtime, "checkin_cancel")["first"][0] == "held"

    client.post(f"/v1/tasks/{task['id']}/close", headers=AUTH)
    assert rows(runtime, "checkin_cancel")["first"] == (
        "cancelled",
        f"held for CSM task #{task['id']}, cancelled when it closed",
    )
    assert rows(runtime, "checkin")["first"][0] == "pending"  # its own journey says release
    run_due(runtime)
    assert rows(runtime, "checkin_cancel")["first"][0] == "cancelled"


def test_an_ended_enrollment_cancels_its_held_mails(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    task = at_risk(client)
    post_events(client, event("acct", "checkin_due", id="c1"))
    run_due(runtime)
    post_events(client, event("acct", "subscription_cancelled"))
    client.post(f"/v1/tasks/{task['id']}/close", headers=AUTH)
    assert rows(runtime, "onboarding")["feedback"][0] == "cancelled"  # exited: held, then ended
