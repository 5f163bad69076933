"""Load journey YAML into typed objects; every error names the file, the line and the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import JourneyError
from orchestrator.journeys.model import EventMatch, Journey, ReentryAfter, Step, WaitFor
from orchestrator.journeys.yaml_files import line_of, parse_mapping, read_text, validation_error

JOURNEY_SUFFIXES = (".yaml", ".yml")
NOT_JOURNEYS = frozenset(
    {
        "health.yaml",
        "health.yml",
        "lifecycle.yaml",
        "lifecycle.yml",
        "programs.yaml",
        "programs.yml",
        "events.yaml",
        "events.yml",
    }
)
# Every key a journey file may hold, at any depth: an unknown one gets the closest as a hint.
JOURNEY_KEYS = frozenset(
    key
    for model in (Journey, Step, WaitFor, EventMatch, ReentryAfter)
    for key in model.model_fields
)


def load_journey(path: Path) -> Journey:
    """Parse and validate one journey file."""
    return parse_journey(read_text(path), path)


def parse_journey(text: str, path: Path) -> Journey:
    """Parse and validate a journey file's text (read already, or kept by a version);
    ``path`` names it in errors and gives the id it must have."""
    root, data = parse_mapping(text, path, "a journey file")
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc, JOURNEY_KEYS) from None
    if journey.id != path.stem:
        raise JourneyError(
            str(path), line_of(root, ("id",)), "id", f"must match the file name {path.stem!r}"
        )
    return journey


def journey_files(directory: Path) -> list[Path]:
    """The journey files in ``directory``, sorted; other YAML (the health score, the event
    catalogue) is left out."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in JOURNEY_SUFFIXES and p.name not in NOT_JOURNEYS
    )


@dataclass(frozen=True)
class JourneyLoadReport:
    """Every journey that loaded and every error, so ``stepmail check`` can show them all."""

    journeys: dict[str, Journey]
    errors: list[JourneyError]


def load_all(directory: Path) -> JourneyLoadReport:
    journeys: dict[str, Journey] = {}
    errors: list[JourneyError] = []
    for path in journey_files(directory):
        try:
            journey = load_journey(path)
        except JourneyError as exc:
            errors.append(exc)
            continue
        journeys[journey.id] = journey
    return JourneyLoadReport(journeys, errors)


def load_journeys(directory: Path) -> dict[str, Journey]:
    """Load every journey, raising the first error: used at start-up, where a bad file stops us."""
    report = load_all(directory)
    if report.errors:
        raise report.errors[0]
    return report.journeys


def journey_json_schema() -> str:
    """The JSON Schema editors use to check journey files as they are typed."""
    schema = Journey.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Stepmail journey"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
