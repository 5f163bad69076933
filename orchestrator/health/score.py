"""Pure scoring and the decision to act on a band: functions of data and ``now`` only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orchestrator.health.model import (
    Action,
    Adoption,
    Band,
    Component,
    Frequency,
    HealthDefinition,
    Latest,
    Penalty,
)


@dataclass(frozen=True)
class HealthScore:
    score: int
    band: str
    components: dict[str, dict[str, Any]]  # id → raw input, value 0-1, weight (kept as history)


def component_value(component: Component, raw: Any) -> float:
    """One component's value in [0, 1] from its raw input (count, set of names, or number)."""
    if isinstance(component, Frequency):
        return min(int(raw or 0) / component.target, 1.0)
    if isinstance(component, Penalty):
        return max(0.0, 1 - int(raw or 0) / component.limit)
    if isinstance(component, Adoption):
        seen = set(raw or ())
        return len(seen & set(component.events)) / len(component.events)
    assert isinstance(component, Latest)
    if raw is None:
        return component.missing
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return component.missing
    return min(max((number - component.min) / (component.max - component.min), 0.0), 1.0)


def score(definition: HealthDefinition, raw: Mapping[str, Any]) -> HealthScore:
    """``raw`` maps component id → its input; a missing id counts as no events."""
    parts: dict[str, dict[str, Any]] = {}
    total = weights = 0.0
    for component in definition.components:
        value = component_value(component, raw.get(component.id))
        total += component.weight * value
        weights += component.weight
        shown = raw.get(component.id)
        shown = sorted(shown) if isinstance(shown, set | frozenset) else shown
        parts[component.id] = {"raw": shown, "value": round(value, 3), "weight": component.weight}
    result = round(100 * total / weights)
    return HealthScore(result, definition.band_for(result).id, parts)


@dataclass(frozen=True)
class ActionHistory:
    """What was fired before: the latest action's band, and when this band last fired."""

    last_band: str | None
    band_fired_at: datetime | None


def actions_to_fire(
    definition: HealthDefinition,
    band: Band,
    tier: str,
    signed_up_at: datetime,
    history: ActionHistory,
    cooldown: timedelta,
    now: datetime,
) -> list[Action]:
    """Entering a band fires its actions once: not while the last actions were for this band
    already, not within the cool-down of this band's last firing, not in the first days."""
    if now - signed_up_at < definition.actions_after:
        return []
    if history.last_band == band.id:
        return []
    if history.band_fired_at is not None and now - history.band_fired_at < cooldown:
        return []
    return [action for action in band.actions if tier in action.tiers]
