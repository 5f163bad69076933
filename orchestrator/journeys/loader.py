"""Load journey YAML into typed objects; every error names the file, the line and the field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from orchestrator.errors import JourneyError
from orchestrator.journeys.model import Journey

JOURNEY_SUFFIXES = (".yaml", ".yml")
NOT_JOURNEYS = frozenset({"health.yaml", "health.yml"})


def load_journey(path: Path) -> Journey:
    """Parse and validate one journey file."""
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise JourneyError(str(path), line, None, f"invalid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise JourneyError(str(path), 1, None, "a journey file must be a mapping of fields")
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        raise _first_error(path, root, exc) from None
    if journey.id != path.stem:
        raise JourneyError(
            str(path), _line_of(root, ("id",)), "id", f"must match the file name {path.stem!r}"
        )
    return journey


def journey_files(directory: Path) -> list[Path]:
    """The journey files in ``directory``, sorted; other YAML (health scores) is left out."""
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


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyError(str(path), None, None, f"cannot read: {exc}") from None


def _first_error(path: Path, root: yaml.Node | None, exc: ValidationError) -> JourneyError:
    error = exc.errors()[0]
    loc = tuple(part for part in error["loc"] if part not in ("function-after",))
    field = ".".join(str(part) for part in loc) or None
    message = error["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return JourneyError(str(path), _line_of(root, loc), field, message)


def _line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """Follow a pydantic location through the YAML node tree to the line that holds it."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
