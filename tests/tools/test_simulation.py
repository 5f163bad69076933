"""``stepmail simulate`` runs the real pipeline: for a scripted customer it prints exactly the
mails the pipeline sends for the same script."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.errors import StepmailError
from orchestrator.health.loader import health_definition
from orchestrator.rendering.samples import sample_customer
from orchestrator.runtime import Runtime
from orchestrator.services.health import run_daily_health
from orchestrator.settings import Settings
from orchestrator.tools.simulation import (
    ScriptedEvent,
    format_timeline,
    parse_scripted_event,
    sent_mails,
    simulate_journey,
)
from tests.support.delivery import run_due
from tests.support.environment import START, make_settings
from tests.support.signups import post_signup
from tests.support.usage import API_KEY, event, post_events

SCRIPT = [
    "1d:report_created",
    "1d 2h:report_created",
    "16d:nps_submitted:score=2",
    "17d:subscription_upgraded",
]
DAYS = 35


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def test_scripted_events_parse() -> None:
    assert parse_scripted_event("4d 6h:nps_submitted:score=3,comment=slow") == ScriptedEvent(
        timedelta(days=4, hours=6), "nps_submitted", {"score": 3, "comment": "slow"}
    )
    for bad in ("report_created", "soon:login", "2d:login:score"):
        with pytest.raises(StepmailError, match="--event"):
            parse_scripted_event(bad)


def test_the_simulator_prints_what_the_pipeline_sends(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    script = [parse_scripted_event(text) for text in SCRIPT]
    timeline = simulate_journey(settings, "onboarding", "low", "en", DAYS, START, script)
    simulated = sent_mails(timeline)

    assert simulated == [
        (0, "onboarding/welcome"),
        (1, "onboarding/basics"),
        (1, "onboarding/next_steps"),
        (3, "onboarding/faq"),
        (7, "onboarding/case_studies"),
        (14, "health_follow_up/follow_up"),  # at risk when its first 14 days end
    ]
    kinds = {entry.kind for entry in timeline}
    assert {"mail", "skipped", "event", "score", "task", "converted", "cancelled"} <= kinds
    assert "converted" in format_timeline(timeline)

    assert run_pipeline(client, runtime, clock, script) == simulated


def run_pipeline(
    client: TestClient, runtime: Runtime, clock: FrozenClock, script: list[ScriptedEvent]
) -> list[tuple[int, str]]:
    """The same customer and script through the signup hook, /v1/events, the daily job and
    scheduler ticks every hour."""
    sample = sample_customer("low", "en", START)
    post_signup(
        client,
        {
            "external_id": "scripted",
            "email": sample.email,
            "name": sample.name,
            "company": sample.company,
            "plan": sample.plan,
            "annual_contract_value": str(sample.annual_contract_value),
            "locale": "en",
            "timezone": sample.timezone,
            "tier": "low",
            "signed_up_at": START.isoformat(),
        },
    )
    definition = health_definition(runtime.settings.journeys_dir)
    assert definition is not None
    pending = list(script)
    for hour in range(DAYS * 24 + 1):
        clock.set(START + timedelta(hours=hour))
        while pending and START + pending[0].after <= clock.now():
            item = pending.pop(0)
            at = START + item.after
            post_events(client, event("scripted", item.name, at, properties=item.properties))
        if hour and hour % 24 == 0:
            run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())
        run_due(runtime)
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(scheduled_sends)
            .where(scheduled_sends.c.state == "sent")
            .order_by(scheduled_sends.c.sent_at, scheduled_sends.c.id)
        )
        return [((r.sent_at - START).days, f"{r.journey_id}/{r.step_id}") for r in rows]


def test_the_simulator_shows_stages_the_nps_answer_and_held_mails(tmp_path: Path) -> None:
    from tests.support.environment import ROOT
    from tests.support.journeys import standard_with

    lifecycle = (ROOT / "journeys" / "lifecycle.yaml").read_text("utf-8")
    folder = standard_with(tmp_path / "journeys", {"lifecycle.yaml": lifecycle})
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", journeys_dir=folder)
    script = [
        parse_scripted_event(text)
        for text in (
            "1d:workflow_created",
            "1d:integration_connected",
            *[f"1d {n}h:login:n={n}" for n in range(1, 6)],
            "16d:nps_submitted:score=3",
        )
    ]
    timeline = simulate_journey(settings, "onboarding", "low", "en", DAYS, START, script)
    rows = {(entry.kind, entry.what) for entry in timeline}
    assert ("stage", "- -> onboarding") in rows
    assert ("stage", "onboarding -> established") in rows
    assert ("answer", "NPS 3") in rows
    assert ("held", "onboarding/feedback") in rows  # the at-risk task is open on day 30
    printed = format_timeline(timeline)
    assert "CSM task #" in printed and "detractor" in printed
