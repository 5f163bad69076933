"""Journey analytics end to end, on SQLite and PostgreSQL: mails go out through the real send
path, readers click their (signed) links, a goal arrives; the rollup job counts what changed and
the funnel shows exactly those numbers, hand-computed here. Scanner clicks are kept but never
counted as the customer's."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import link_clicks
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import journey_funnel, refresh_rollups
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
HIGH_EN = {"tier": "high", "locale": "en", "annual_contract_value": 3_600_000}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def click_tokens(path: Path) -> list[str]:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    body = message.get_body(("html",))
    assert body is not None
    return re.findall(r'href="https://stepmail\.example\.com/r/([^"]+)"', str(body.get_content()))


def mail_of(settings: Settings, external_id: str) -> Path:
    [path] = [p for p in outbox_files(settings) if external_id in p.read_text("utf-8")]
    return path


def test_the_funnel_counts_sends_clicks_scanners_and_a_conversion(
    client: TestClient, runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    for external_id, extra in (("hi", HIGH_EN), ("lo", {}), ("scan", {})):
        payload = signup_payload(external_id, email=f"{external_id}@customer.example", **extra)
        assert post_signup(client, payload).status_code == 202
    assert run_due(runtime) == ["sent"] * 3

    clock.advance(timedelta(minutes=10))  # long after delivery: not "early"
    [first, *_] = click_tokens(mail_of(settings, "hi@customer.example"))
    followed = client.get(f"/r/{first}", headers={"User-Agent": BROWSER}, follow_redirects=False)
    assert followed.status_code == 302 and followed.headers["location"].startswith("https://")
    assert followed.headers["cache-control"] == "no-store"
    # A security gateway walks every link of "scan"'s mail, with a library's User-Agent.
    for token in click_tokens(mail_of(settings, "scan@customer.example")):
        client.get(f"/r/{token}", headers={"User-Agent": "python-requests/2.31"})
    assert post_events(client, event("lo", "subscription_upgraded")).status_code == 202

    report = refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
    assert report.enrollments == 3  # and the 3 mails, and the steps the goal cancelled
    funnel = journey_funnel(
        runtime.engine, "onboarding", rules=runtime.analytics_rules(), clock=runtime.clock
    )
    welcome = next(step for step in funnel.steps if step.step_id == "welcome")
    counts = welcome.counts
    assert (counts.sent, counts.due, counts.skipped) == (3, 3, 0)
    assert (counts.clicked, counts.scanner_clicked, counts.converted) == (1, 1, 1)
    assert (funnel.journey.enrolled, funnel.journey.converted) == (3, 1)
    by_segment = {(s.tier, s.locale): s.counts.sent for s in welcome.segments}
    assert by_segment == {("high", "en"): 1, ("low", "ja"): 2}
    later = [step.counts for step in funnel.steps if step.step_id != "welcome"]
    assert all(c.sent == 0 for c in later)
    assert sum(c.cancelled for c in later) == report.sends - 3 > 0  # "lo"'s, by the goal

    with runtime.engine.connect() as connection:
        clicks = connection.execute(select(link_clicks.c.suspect, link_clicks.c.suspect_reasons))
        flagged = sorted(row.suspect_reasons for row in clicks if row.suspect)
    assert flagged and all("agent" in reasons for reasons in flagged)

    # Nothing changed: a second pass counts nothing and the numbers stay.
    assert refresh_rollups(runtime.engine, rules=runtime.analytics_rules()).rows == 0


def test_a_tier_filter_and_a_range_without_sends(client: TestClient, runtime: Runtime) -> None:
    assert post_signup(client, signup_payload("hi", **HIGH_EN)).status_code == 202
    assert post_signup(client, signup_payload("lo")).status_code == 202
    run_due(runtime)
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules())
    rules, clock = runtime.analytics_rules(), runtime.clock
    high = journey_funnel(runtime.engine, "onboarding", tier="high", rules=rules, clock=clock)
    assert high.journey.enrolled == 1 and high.steps[0].counts.sent == 1
    today = clock.now().date()
    old = journey_funnel(
        runtime.engine,
        "onboarding",
        today - timedelta(days=60),
        today - timedelta(days=31),
        rules=rules,
        clock=clock,
    )
    assert old.journey.enrolled == 0 and all(step.counts.sent == 0 for step in old.steps)
