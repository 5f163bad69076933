"""What is built from a health definition once and kept while the definition lives."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from orchestrator.health.model import HealthDefinition

T = TypeVar("T")

KEPT = 16  # a few definitions live at once (one is loaded again when its file changes)


def per_definition(build: Callable[[HealthDefinition], T]) -> Callable[[HealthDefinition], T]:
    """``build`` run once per definition object, its result kept by the object's identity
    (hashing a definition would read all of it on every call). At most :data:`KEPT` are kept;
    past that the cache starts again."""
    made: dict[int, tuple[HealthDefinition, T]] = {}

    @functools.wraps(build)
    def cached(definition: HealthDefinition) -> T:
        found = made.get(id(definition))
        if found is not None and found[0] is definition:
            return found[1]
        value = build(definition)
        if len(made) >= KEPT:
            made.clear()
        made[id(definition)] = (definition, value)
        return value

    return cached
