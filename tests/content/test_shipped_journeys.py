"""The shipped journeys: the onboarding loads with its steps, and the committed JSON Schema
is current."""

from __future__ import annotations

from orchestrator.journeys.loader import journey_json_schema, load_journey
from tests.support.environment import ROOT


def test_the_default_journey_loads_with_its_steps() -> None:
    journey = load_journey(ROOT / "journeys" / "onboarding.yaml")
    assert [(s.id, s.after.days) for s in journey.steps] == [
        ("welcome", 0),
        ("basics", 1),
        ("next_steps", 0),  # on_event: report_created
        ("faq", 3),
        ("activation_nudge", 3),
        ("case_studies", 7),
        ("feedback", 30),
    ]


def test_the_committed_json_schema_is_current() -> None:
    committed = (ROOT / "journeys" / "journey.schema.json").read_text(encoding="utf-8")
    assert committed == journey_json_schema(), (
        "run `stepmail schema --out journeys/journey.schema.json`"
    )
