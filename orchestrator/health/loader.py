"""Load ``journeys/health.yaml``; errors name the file, the line and the field, like journeys."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import JourneyError
from orchestrator.health.model import HealthDefinition
from orchestrator.journeys.yaml_files import read_mapping, validation_error

HEALTH_FILE = "health.yaml"
_KIND_TAGS = frozenset({"frequency", "adoption", "penalty", "latest", "mail", "csm_task"})


def load_health(path: Path) -> HealthDefinition:
    root, data = read_mapping(path, "the health file")
    try:
        return HealthDefinition.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc, union_tags=_KIND_TAGS) from None


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
