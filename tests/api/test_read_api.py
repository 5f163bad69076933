"""The read API: a customer with their enrollments and steps, their sends a page at a time, what
a sent mail was (the archive), the journeys and a journey's funnel (JSON and CSV); every list
pages with an opaque cursor, a bad one is a 422 naming it. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import (
    refresh_rollups,
    run_rollups_if_due,
    snapshot_bands_if_due,
)
from orchestrator.services.archive import prune_archive
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def sent_two_mails(client: TestClient, runtime: Runtime) -> None:
    """c1 signs up and gets the welcome, then (a day later) the basics mail."""
    assert post_signup(client, signup_payload("c1")).status_code == 202
    assert run_due(runtime) == ["sent"]
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(timedelta(days=1, hours=1))
    assert run_due(runtime) == ["sent"]


def test_a_customer_with_enrollments_steps_and_archived_subjects(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    sent_two_mails(client, runtime)
    answer = client.get("/v1/customers/c1", headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["external_id"], body["tier"], body["locale"]) == ("c1", "low", "ja")
    [enrollment] = body["enrollments"]
    steps = {step["step_id"]: step for step in enrollment["steps"]}
    assert steps["welcome"]["state"] == "sent" and steps["basics"]["state"] == "sent"
    [welcome_mail] = [p.read_bytes() for p in outbox_files(settings) if "welcome" in p.name]
    subject = steps["welcome"]["subject"]
    assert subject and subject == str(message_from_bytes(welcome_mail, policy=default)["Subject"])
    assert steps["faq"]["state"] == "pending" and steps["faq"]["next_due_local"]
    assert steps["next_steps"]["state"] == "not_scheduled"  # an event step, not yet

    message = client.get(f"/v1/sends/{steps['welcome']['send_id']}/message", headers=AUTH)
    assert message.status_code == 200 and message.json()["subject"] == subject
    assert "<html" in message.json()["html"].lower() and message.json()["text"]
    headers = dict(message.json()["headers"])
    assert "c1@customer.example" in headers["To"]
    assert "List-Unsubscribe" in headers

    assert client.get("/v1/customers/nobody", headers=AUTH).status_code == 404
    assert client.get("/v1/customers/c1").status_code == 401
    assert client.get("/v1/sends/999999/message", headers=AUTH).status_code == 404


def test_the_archive_is_pruned_after_its_retention(client: TestClient, runtime: Runtime) -> None:
    sent_two_mails(client, runtime)
    send_id = client.get("/v1/customers/c1", headers=AUTH).json()["enrollments"][0]["steps"][0][
        "send_id"
    ]
    first_sent = runtime.clock.now() - timedelta(days=1, hours=1)
    assert prune_archive(runtime.engine, before=first_sent + timedelta(minutes=1)) == 1
    assert client.get(f"/v1/sends/{send_id}/message", headers=AUTH).status_code == 404
    items = client.get("/v1/customers/c1/sends", headers=AUTH).json()["items"]
    subjects = {item["step_id"]: item["subject"] for item in items if item["state"] == "sent"}
    assert subjects["welcome"] is None and subjects["basics"]  # the newer one is still kept


def test_sends_page_with_a_cursor_and_a_link_header(client: TestClient, runtime: Runtime) -> None:
    sent_two_mails(client, runtime)
    seen: list[int] = []
    url = "/v1/customers/c1/sends?limit=2"
    pages = 0
    while True:
        answer = client.get(url, headers=AUTH)
        assert answer.status_code == 200
        page = answer.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            assert "link" not in answer.headers
            break
        assert answer.headers["link"].endswith('rel="next"')
        url = f"/v1/customers/c1/sends?limit=2&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) >= 6 and pages >= 3
    for bad in ("x", "eyJ4Ijox", "W10", "%00"):
        refused = client.get(f"/v1/customers/c1/sends?cursor={bad}", headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["query", "cursor"]
    tasks_cursor = client.get("/v1/journeys?limit=1", headers=AUTH).json()["next_cursor"]
    other_list = client.get(f"/v1/tasks?cursor={tasks_cursor}", headers=AUTH)
    assert other_list.status_code == 422  # one list's cursor is refused by another


def test_journeys_and_a_funnel_as_json_and_csv(client: TestClient, runtime: Runtime) -> None:
    sent_two_mails(client, runtime)
    post_events(client, event("c1", "subscription_upgraded"))
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules())

    journeys = client.get("/v1/journeys", headers=AUTH).json()["items"]
    onboarding = next(j for j in journeys if j["id"] == "onboarding")
    assert (onboarding["enrolled_30d"], onboarding["sent_30d"]) == (1, 2)
    assert onboarding["converted_30d"] == 1

    funnel = client.get("/v1/journeys/onboarding/funnel", headers=AUTH).json()
    steps = {step["step_id"]: step["counts"] for step in funnel["steps"]}
    assert steps["welcome"]["sent"] == 1 and steps["basics"]["converted"] == 1  # the last mail
    assert steps["welcome"]["converted"] == 0
    assert funnel["journey"]["enrolled"] == 1 and funnel["journey"]["converted"] == 1
    assert funnel["steps"][0]["segments"][0]["tier"] == "low"

    as_csv = client.get("/v1/journeys/onboarding/funnel", headers={**AUTH, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    basics = next(r for r in rows if r["step"] == "basics" and r["tier"] == "all")
    assert (basics["sent"], basics["converted"]) == ("1", "1")
    same = client.get("/v1/journeys/onboarding/funnel.csv", headers=AUTH)
    assert same.text == as_csv.text

    assert client.get("/v1/journeys/nope/funnel", headers=AUTH).status_code == 404
    reversed_range = client.get(
        "/v1/journeys/onboarding/funnel?from=2026-11-10&to=2026-11-01", headers=AUTH
    )
    assert reversed_range.status_code == 422
    assert reversed_range.json()["detail"][0]["loc"] == ["query", "from"]
    too_long = client.get(
        "/v1/journeys/onboarding/funnel?from=2020-01-01&to=2026-11-01", headers=AUTH
    )
    assert too_long.status_code == 422
    assert client.get("/v1/journeys/onboarding/funnel?tier=gold", headers=AUTH).status_code == 422
    as_seconds = client.get("/v1/overview?to=0", headers=AUTH)  # not a day, whatever pydantic says
    assert as_seconds.status_code == 422 and as_seconds.json()["detail"][0]["loc"] == [
        "query",
        "to",
    ]


def test_the_overview_counts_the_days_and_the_backlog(client: TestClient, runtime: Runtime) -> None:
    sent_two_mails(client, runtime)
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
    body = client.get("/v1/overview", headers=AUTH).json()
    assert sum(day["sent"] for day in body["days"]) == 2
    assert body["backlog"]["pending"] >= 1 and body["uncounted"] == 0


def test_the_periodic_jobs_count_and_snapshot_the_bands(
    client: TestClient, runtime: Runtime
) -> None:
    """The scheduler's jobs: the rollups every 10 s (a second call within them is not due),
    the health bands every five minutes, which the overview shows as now and as its trend."""
    sent_two_mails(client, runtime)
    rules, now = runtime.analytics_rules(), runtime.clock.now()
    report = run_rollups_if_due(runtime.engine, rules=rules, now=now)
    assert report is not None and report.sends >= 2
    assert run_rollups_if_due(runtime.engine, rules=rules, now=now) is None  # not due yet
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=now) == {"": 1}
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=now) is None
    body = client.get("/v1/overview", headers=AUTH).json()
    assert body["bands"] == {"": 1} and body["bands_as_of"] is not None
    assert [day["customers"] for day in body["band_trend"]] == [{"": 1}]
