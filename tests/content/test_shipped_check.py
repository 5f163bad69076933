"""``stepmail check`` passes on the shipped journeys and templates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.guards import jinja_steps
from orchestrator.health.loader import health_event_references, load_health
from orchestrator.journeys.catalogue import load_catalogue
from orchestrator.journeys.lint import conditions, event_references
from orchestrator.journeys.loader import load_journeys
from tests.support.cli import cli_files, run_cli
from tests.support.environment import ROOT


def test_check_passes_on_the_shipped_journeys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # within a hundredth of the render's step budget: a shipped mail takes at most ~2,800
    # steps of its million (guards/jinja_steps)
    monkeypatch.setattr(jinja_steps, "MAX_STEPS", jinja_steps.MAX_STEPS // 100)
    result = run_cli(cli_files(tmp_path, ROOT / "journeys"), "check")
    assert result.exit_code == 0, result.output
    # 31 step × tier before the customer-success loop, + NPS recovery and promoter (3 each),
    # three stage-entry journeys (3 each) and the community invitation (3): 49 step × tier,
    # each in ja and en, with and without a CSM and csm_booking_url
    assert "392 mails rendered, no problems" in result.output


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
