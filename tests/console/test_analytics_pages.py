"""The console's analytics over HTTP, on SQLite and PostgreSQL: the overview's charts and
numbers on the home page, a journey's funnel (table, chart, CSV download) for a range and
filters, and a bad filter refused with the field named. The headless browser proves the same
pages render (tests/browser/test_console.py)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.services.analytics import refresh_rollups
from tests.support.console import console_client, sign_in
from tests.support.delivery import run_due
from tests.support.signups import post_signup, signup_payload


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient]:
    yield from console_client(runtime)


def two_welcomes(console: TestClient, runtime: Runtime) -> None:
    post_signup(console, signup_payload("c1"))
    post_signup(console, signup_payload("c2", locale="en"))
    assert run_due(runtime) == ["sent", "sent"]
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules())


def test_the_home_page_draws_the_overview(console: TestClient, runtime: Runtime) -> None:
    two_welcomes(console, runtime)
    sign_in(console, "viewer")
    page = console.get("/console/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    for chart in ("chart-activity", "chart-backlog", "chart-bands", "chart-band-trend"):
        assert f'id="{chart}"' in page.text
    assert "<svg" in page.text and "Mails per day" in page.text
    assert 'id="due-now">0<' in page.text  # nothing due yet: the next steps are tomorrow
    assert "Sent · 11-02: 2" in page.text  # the exact value of the point, as a tooltip


def test_a_journeys_funnel_table_chart_and_csv(console: TestClient, runtime: Runtime) -> None:
    two_welcomes(console, runtime)
    sign_in(console, "viewer")
    page = console.get("/console/journeys/onboarding", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'id="funnel-enrolled">2<' in page.text
    assert 'id="chart-funnel"' in page.text and 'id="funnel-table"' in page.text
    assert 'id="funnel-welcome-low-en"' in page.text and 'id="funnel-welcome-low-ja"' in page.text
    only_en = console.get("/console/journeys/onboarding?by_locale=en")
    assert 'id="funnel-enrolled">1<' in only_en.text
    assert 'id="funnel-welcome-low-ja"' not in only_en.text

    exported = console.get("/console/journeys/onboarding/funnel.csv?by_locale=en")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    welcome = next(r for r in rows if r["step"] == "welcome" and r["tier"] == "all")
    assert welcome["sent"] == "1"

    for query, field in (("from=yesterday", "from"), ("by_tier=gold", "by_tier")):
        refused = console.get(f"/console/journeys/onboarding?{query}")
        assert refused.status_code == 422 and field in refused.text
    reversed_range = console.get("/console/journeys/onboarding?from=2026-11-10&to=2026-11-01")
    assert reversed_range.status_code == 422


def test_the_funnel_csv_needs_a_session(console: TestClient) -> None:
    answer = console.get("/console/journeys/onboarding/funnel.csv", follow_redirects=False)
    assert answer.status_code in (302, 303, 307) and "/console/login" in answer.headers["location"]


def test_a_sent_mail_is_shown_as_it_went_out(console: TestClient, runtime: Runtime) -> None:
    two_welcomes(console, runtime)
    sign_in(console, "viewer")
    page = console.get("/console/customers/c1", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    [send_id] = re.findall(r'id="as-sent-(\d+)"', page.text)
    assert "rendered again" not in page.text  # every subject shown is the archived one
    shown = console.get(f"/console/sends/{send_id}/message", headers={"Accept-Language": "en"})
    assert shown.status_code == 200 and 'id="archived-subject"' in shown.text
    assert "List-Unsubscribe" in shown.text and 'sandbox=""' in shown.text
    frame = console.get(f"/console/sends/{send_id}/message.html")
    assert frame.status_code == 200 and "<html" in frame.text.lower()
    assert (
        "script-src" not in frame.headers["content-security-policy"]
        or "'none'" in (frame.headers["content-security-policy"])
    )
    assert console.get("/console/sends/999999/message").status_code == 404
    assert console.get("/console/sends/x/message").status_code == 404
