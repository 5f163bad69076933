"""Load ``journeys/health.yaml``; errors name the file, the line and the field, like journeys."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from orchestrator.errors import JourneyError
from orchestrator.health.model import (
    Adoption,
    Band,
    Frequency,
    HealthDefinition,
    Latest,
    MailAction,
    Penalty,
    Signal,
    TaskAction,
)
from orchestrator.journeys.catalogue import EventCatalogue
from orchestrator.journeys.lint import EventReference, reference_problems
from orchestrator.journeys.yaml_files import (
    did_you_mean,
    line_of,
    read_mapping,
    read_when_changed,
    validation_error,
)

HEALTH_FILE = "health.yaml"
HEALTH_KEYS = frozenset(
    key
    for model in (HealthDefinition, Frequency, Adoption, Penalty, Latest, Band, MailAction)
    for key in (*model.model_fields, *TaskAction.model_fields, *Signal.model_fields)
)


def load_health(path: Path) -> HealthDefinition:
    return _read(path)[1]


def _read(path: Path) -> tuple[yaml.Node | None, HealthDefinition]:
    """The file's node tree (for the lines of later problems) and its definition."""
    root, data = read_mapping(path, "the health file")
    try:
        return root, HealthDefinition.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc, HEALTH_KEYS) from None


def health_definition(journeys_dir: Path) -> HealthDefinition | None:
    """The installation's definition, or None without a health file (no scoring at all).
    Cached per file version, so a deploy that changes the file is picked up."""
    return _read_health(journeys_dir / HEALTH_FILE)


_read_health = read_when_changed(load_health)


def missing_journeys(definition: HealthDefinition, journey_ids: Iterable[str]) -> list[str]:
    """Mail actions naming journeys that do not exist (``stepmail check`` reports them)."""
    return sorted(definition.mail_journeys() - set(journey_ids))


def health_problems(
    journeys_dir: Path, journey_ids: Iterable[str], catalogue: EventCatalogue | None = None
) -> list[str]:
    """For ``stepmail check``: a broken health file, actions naming unknown journeys, and
    (with a catalogue) events or properties it does not hold."""
    path = journeys_dir / HEALTH_FILE
    if not os.path.lexists(path):
        return []
    try:
        root, definition = _read(path)
    except JourneyError as exc:
        return [str(exc)]
    problems = [
        f"{path}: bands: a mail action names no journey {name!r}"
        for name in missing_journeys(definition, journey_ids)
    ]
    if catalogue is not None:
        found = reference_problems(path, root, health_event_references(definition), catalogue)
        found += _property_problems(path, root, definition, catalogue)
        problems += [str(problem) for problem in sorted(found, key=lambda p: p.line or 0)]
    return problems


def health_event_references(definition: HealthDefinition) -> list[EventReference]:
    """Every event the score reads or a signal watches, with where the file names it."""
    found: list[EventReference] = []
    for index, component in enumerate(definition.components):
        if isinstance(component, Adoption):
            found += [
                EventReference(("components", index, "events", n), event, {})
                for n, event in enumerate(component.events)
            ]
        else:
            found.append(EventReference(("components", index, "event"), component.event, {}))
    for index, signal in enumerate(definition.signals):
        found.append(EventReference(("signals", index, "event"), signal.event, {}))
    return found


def _property_problems(
    path: Path, root: yaml.Node | None, definition: HealthDefinition, catalogue: EventCatalogue
) -> list[JourneyError]:
    """A score or signal reading a property the catalogue does not give its event."""
    reads: list[tuple[tuple[str | int, ...], str, str | None]] = [
        (("components", i, "property"), c.event, c.property)
        for i, c in enumerate(definition.components)
        if isinstance(c, Latest)
    ]
    reads += [
        (("signals", i, "property"), s.event, s.property) for i, s in enumerate(definition.signals)
    ]
    problems = []
    for loc, event, name in reads:
        entry = catalogue.get(event)
        if entry is not None and name is not None and name not in entry.properties:
            message = f"the catalogue gives {event!r} no property {name!r}" + did_you_mean(
                name, entry.properties
            )
            field = ".".join(str(part) for part in loc)
            problems.append(JourneyError(str(path), line_of(root, loc), field, message))
    return problems
