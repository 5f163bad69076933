"""A health definition's derived pieces are built once per definition object, rebuilt for
another object (a reloaded file), and never kept without bound."""

from __future__ import annotations

from pathlib import Path

from orchestrator.health.loader import load_health
from orchestrator.health.model import HealthDefinition
from orchestrator.health.per_definition import KEPT, per_definition

HEALTH = Path(__file__).resolve().parents[3] / "journeys" / "health.yaml"


def test_built_once_per_definition_and_again_for_another() -> None:
    built: list[int] = []

    @per_definition
    def count(definition: HealthDefinition) -> int:
        built.append(id(definition))
        return len(definition.components)

    first, reloaded = load_health(HEALTH), load_health(HEALTH)
    assert first == reloaded and first is not reloaded
    assert count(first) == count(first) == len(first.components)
    assert len(built) == 1
    count(reloaded)
    assert len(built) == 2  # an equal definition loaded again is built for again


def test_at_most_kept_definitions_are_held() -> None:
    built: list[HealthDefinition] = []

    @per_definition
    def keep(definition: HealthDefinition) -> int:
        built.append(definition)
        return len(built)

    definitions = [load_health(HEALTH) for _ in range(KEPT + 1)]
    for definition in definitions:
        keep(definition)
    keep(definitions[0])  # dropped when the cache started again: built anew
    assert len(built) == KEPT + 2
