"""A loaded journey read again for what loading cannot judge alone: the events it names
against the catalogue (trigger, goal, exits, event steps, waits) and the names its conditions
use. Each problem is a :class:`JourneyError` at the line of the file that holds it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.errors import JourneyError
from orchestrator.journeys.catalogue import EventCatalogue, matches_type
from orchestrator.journeys.condition_check import (
    ConditionVocabulary,
    condition_problems,
    uncatalogued,
)
from orchestrator.journeys.model import EventMatch, Journey
from orchestrator.journeys.yaml_files import did_you_mean, line_of, read_tree, written_part

Loc = tuple[str | int, ...]
BUILT_IN_TRIGGERS = ("signup", "manual")


@dataclass(frozen=True)
class EventReference:
    """An event a file names, and where (``loc`` through the YAML, down to the name)."""

    loc: Loc
    event: str
    properties: Mapping[str, object]


def event_references(journey: Journey) -> list[EventReference]:
    """Every event the journey waits for, reacts to or is entered on (conditions aside)."""
    found: list[EventReference] = []

    def add(loc: Loc, match: EventMatch | None) -> None:
        if match is not None:
            found.append(EventReference((*loc, "event"), match.event, match.properties))

    if isinstance(journey.trigger, tuple):
        for index, match in enumerate(journey.trigger):
            add(("trigger", index), match)
    else:
        add(("trigger",), journey.trigger_events[0] if journey.trigger_events else None)
    add(("goal",), journey.goal)
    for index, match in enumerate(journey.exit_on_events):
        add(("exit_on_events", index), match)
    for index, step in enumerate(journey.steps):
        add(("steps", index, "on_event"), step.on_event)
        if step.wait_for is not None:
            found.append(
                EventReference(("steps", index, "wait_for", "event"), step.wait_for.event, {})
            )
    return found


def conditions(journey: Journey) -> list[tuple[Loc, str]]:
    """Every condition of the journey, with where it is written."""
    found: list[tuple[Loc, str]] = [
        (("exit_when", index), source) for index, source in enumerate(journey.exit_when)
    ]
    found += [
        (("steps", index, "when"), step.when)
        for index, step in enumerate(journey.steps)
        if step.when is not None
    ]
    return found


def vocabulary(
    catalogue: EventCatalogue | None, bands: Sequence[str] | None
) -> ConditionVocabulary:
    events = None
    if catalogue is not None:
        events = {name: frozenset(e.properties) for name, e in catalogue.all_events().items()}
    return ConditionVocabulary(events, frozenset(bands) if bands is not None else None)


def journey_problems(
    path: Path,
    journey: Journey,
    catalogue: EventCatalogue | None,
    words: ConditionVocabulary,
) -> list[JourneyError]:
    """What would fail later in a journey that loads: at its lines, in file order."""
    try:
        root = read_tree(path, "a journey file")
    except JourneyError as exc:  # changed since it loaded
        return [exc]
    problems = list(_condition_problems(path, root, journey, words))
    if catalogue is not None:
        problems += _event_problems(path, root, event_references(journey), catalogue, journey)
    return sorted(problems, key=lambda p: p.line or 0)


def _condition_problems(
    path: Path, root: yaml.Node | None, journey: Journey, words: ConditionVocabulary
) -> Iterator[JourneyError]:
    for loc, source in conditions(journey):
        for message in condition_problems(source, words):
            yield _at(path, root, loc, message)


def reference_problems(
    path: Path,
    root: yaml.Node | None,
    references: Sequence[EventReference],
    catalogue: EventCatalogue,
) -> list[JourneyError]:
    """Events that are not catalogued, properties the catalogue does not give them or of
    another type; for the health file too."""
    return list(_event_problems(path, root, references, catalogue, None))


def _event_problems(
    path: Path,
    root: yaml.Node | None,
    references: Sequence[EventReference],
    catalogue: EventCatalogue,
    journey: Journey | None,
) -> Iterator[JourneyError]:
    names = catalogue.names()
    for ref in references:
        entry = catalogue.get(ref.event)
        if entry is None:
            yield _at(path, root, ref.loc, _unknown_event(ref, names, journey))
            continue
        where = ref.loc[:-1]
        for key, value in ref.properties.items():
            known = entry.properties.get(key)
            if known is None:
                message = f"the catalogue gives {ref.event!r} no property {key!r}" + did_you_mean(
                    key, entry.properties
                )
                yield _at(path, root, (*where, "properties", key), message)
            elif not matches_type(value, known.type):
                message = f"{ref.event}.{key} is {known.type} in the catalogue, not {value!r}"
                yield _at(path, root, (*where, "properties", key), message)


def _unknown_event(ref: EventReference, names: frozenset[str], journey: Journey | None) -> str:
    if journey is not None and ref.loc == ("trigger", "event") and not ref.properties:
        return (
            f"{ref.event!r} is neither signup, manual nor an event in the catalogue"
            + did_you_mean(ref.event, [*BUILT_IN_TRIGGERS, *names])
        )
    return uncatalogued(ref.event, dict.fromkeys(names))


def _at(path: Path, root: yaml.Node | None, loc: Loc, message: str) -> JourneyError:
    field = ".".join(str(part) for part in written_part(root, loc))
    return JourneyError(str(path), line_of(root, loc), field, message)
