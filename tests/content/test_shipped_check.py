"""``stepmail check`` passes on the shipped journeys and templates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.health.loader import health_event_references, load_health
from orchestrator.journeys.catalogue import load_catalogue
from orchestrator.journeys.lint import conditions, event_references
from orchestrator.journeys.loader import load_journeys
from tests.support.environment import ROOT

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(ROOT / "journeys", journeys)
    shutil.copytree(ROOT / "templates" / "mail", templates)
    return {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_check_passes_on_the_shipped_journeys(env: dict[str, str]) -> None:
    code, output = invoke(env, "check")
    assert code == 0, output
    # 31 step × tier before the customer-success loop, + NPS recovery and promoter (3 each),
    # three stage-entry journeys (3 each) and the community invitation (3): 49 step × tier,
    # each in ja and en, with and without a CSM and csm_booking_url
    assert "392 mails rendered, no problems" in output


def test_the_shipped_catalogue_covers_every_event_journeys_and_the_score_name() -> None:
    journeys = load_journeys(ROOT / "journeys")
    health = load_health(ROOT / "journeys" / "health.yaml")
    catalogue = load_catalogue(ROOT / "journeys" / "events.yaml")
    named = {ref.event for journey in journeys.values() for ref in event_references(journey)}
    named |= {ref.event for ref in health_event_references(health)}
    for journey in journeys.values():
        for _, condition in conditions(journey):
            named |= set(re.findall(r"usage\.\w+\('([a-z0-9_]+)'", condition))
    assert named >= {"report_created", "subscription_upgraded", "tier_changed", "login"}
    assert named <= set(catalogue.events)  # listed in the file, Stepmail's own included
    for name, entry in catalogue.events.items():
        assert entry.description.strip(), name
