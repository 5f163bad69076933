"""Load ``journeys/health.yaml``; errors name the file, the line and the field, like journeys."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from orchestrator.errors import JourneyError
from orchestrator.health.model import HealthDefinition
from orchestrator.journeys.loader import _line_of

HEALTH_FILE = "health.yaml"
_KIND_TAGS = frozenset({"frequency", "adoption", "penalty", "latest", "mail", "csm_task"})


def load_health(path: Path) -> HealthDefinition:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyError(str(path), None, None, f"cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise JourneyError(str(path), line, None, f"invalid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise JourneyError(str(path), 1, None, "the health file must be a mapping of fields")
    try:
        return HealthDefinition.model_validate(data)
    except ValidationError as exc:
        raise _health_error(path, root, exc) from None


def _health_error(path: Path, root: yaml.Node | None, exc: ValidationError) -> JourneyError:
    """Like a journey error, without the ``kind`` tag pydantic puts in a union's location."""
    error = exc.errors()[0]
    loc = tuple(
        part
        for i, part in enumerate(error["loc"])
        if not (i and isinstance(error["loc"][i - 1], int) and part in _KIND_TAGS)
    )
    message = error["msg"].removeprefix("Value error, ")
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more)"
    field = ".".join(str(part) for part in loc) or None
    return JourneyError(str(path), _line_of(root, loc), field, message)


def health_definition(journeys_dir: Path) -> HealthDefinition | None:
    """The installation's definition, or None without a health file (no scoring at all).
    Cached per file version, so a deploy that changes the file is picked up."""
    path = journeys_dir / HEALTH_FILE
    try:
        version = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _cached(path.resolve(), version)


@lru_cache(maxsize=8)
def _cached(path: Path, _version: int) -> HealthDefinition:
    return load_health(path)


def missing_journeys(definition: HealthDefinition, journey_ids: Iterable[str]) -> list[str]:
    """Mail actions naming journeys that do not exist (``stepmail check`` reports them)."""
    return sorted(definition.mail_journeys() - set(journey_ids))


def health_problems(journeys_dir: Path, journey_ids: Iterable[str]) -> list[str]:
    """For ``stepmail check``: a broken health file, or actions naming unknown journeys."""
    path = journeys_dir / HEALTH_FILE
    if not path.exists():
        return []
    try:
        definition = load_health(path)
    except JourneyError as exc:
        return [str(exc)]
    return [
        f"{path}: bands: a mail action names no journey {name!r}"
        for name in missing_journeys(definition, journey_ids)
    ]
