"""Pure scoring and the decision to act on a band: functions of data and ``now`` only."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

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
from orchestrator.health.per_definition import per_definition

T = TypeVar("T")


class HealthScore:
    """A customer's score (0-100) and band, and its ``components`` (id → raw input, value 0-1,
    weight: what the history keeps), built when first read: most scores in a batch of
    events did not move, and only a moved score's components are stored."""

    __slots__ = ("_founds", "_key", "_parts", "_scorer", "_shown", "band", "score")

    def __init__(
        self,
        score: int,
        band: str,
        scorer: _Scorer,
        shown: tuple[Any, ...],
        founds: tuple[_Known, ...],
        key: tuple[Any, ...] | None,
    ) -> None:
        self.score = score
        self.band = band
        self._scorer = scorer
        self._shown = shown
        self._founds = founds
        self._key = key
        self._parts: dict[str, dict[str, Any]] | None = None

    def made_once(self, make: Callable[[dict[str, dict[str, Any]]], T]) -> T:
        """``make(self.components)``, made once for every score of this definition with the
        same remembered inputs and kept with the definition: ``make`` must give a value
        nothing changes (a text), since those scores share it."""
        if self._key is None:
            return make(self.components)
        made = self._scorer.made
        key = (make, self._key)
        found = made.get(key)
        if found is None:
            found = make(self.components)
            if len(made) >= _KNOWN_SCORES:
                made.clear()
            made[key] = found
        return cast(T, found)

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        """Built once, this result's own (another result for the same inputs has its own)."""
        if self._parts is None:
            self._parts = {
                component[0]: {
                    "raw": shown if names is None else list(names),
                    "value": rounded,
                    "weight": component[1],
                }
                for component, shown, (_, rounded, names) in zip(
                    self._scorer.components, self._shown, self._founds, strict=True
                )
            }
        return self._parts

    def __repr__(self) -> str:
        return f"HealthScore(score={self.score!r}, band={self.band!r})"


def value_function(component: Component) -> Callable[[Any], float]:
    """The function from a component's raw input (count, set of names, or number) to its
    value in [0, 1], its settings bound once."""
    if isinstance(component, Frequency):
        target = component.target
        return lambda raw: min(int(raw or 0) / target, 1.0)
    if isinstance(component, Penalty):
        limit = component.limit
        return lambda raw: max(0.0, 1 - int(raw or 0) / limit)
    if isinstance(component, Adoption):
        events, count = set(component.events), len(component.events)
        return lambda raw: len(set(raw or ()) & events) / count
    assert isinstance(component, Latest)
    missing, low, span = component.missing, component.min, component.max - component.min

    def latest(raw: Any) -> float:
        if raw is None:
            return missing
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            return missing
        if not math.isfinite(number):  # "nan" or "inf" sent as a property: no answer
            return missing
        return min(max((number - low) / span, 0.0), 1.0)

    return latest


def score(definition: HealthDefinition, raw: Mapping[str, Any]) -> HealthScore:
    """``raw`` maps component id → its input; a missing id counts as no events."""
    return _score(_scorer(definition), definition, raw)


def scores_of(
    definition: HealthDefinition, inputs: Mapping[int, Mapping[str, Any]], ids: Iterable[int]
) -> dict[int, HealthScore]:
    """:func:`score` of each customer of ``ids`` from its ``inputs``, the definition made
    ready once for them all."""
    scorer = _scorer(definition)
    return {cid: _score(scorer, definition, inputs[cid]) for cid in ids}


def _score(scorer: _Scorer, definition: HealthDefinition, raw: Mapping[str, Any]) -> HealthScore:
    shown = tuple(map(raw.get, scorer.ids))
    key = _scores_key(shown, scorer.named)
    if key is not None:
        found = scorer.scores.get(key)
        if found is not None:
            return HealthScore(found[0], found[1], scorer, shown, found[2], key)
    founds = []
    total = 0.0
    for (_, weight, value_of, named, known), given in zip(scorer.components, shown, strict=True):
        memo = _memo_key(given, named)
        value = known.get(memo) if memo is not _UNKEPT else None
        if value is None:
            value = _value(value_of, given, memo)
            if memo is not _UNKEPT and len(known) < _KNOWN_INPUTS:
                known[memo] = value
        total += weight * value[0]
        founds.append(value)
    result = round(100 * total / scorer.weights)
    band = scorer.bands[result] if 0 <= result <= 100 else definition.band_for(result).id
    kept = tuple(founds)
    if key is not None:
        if len(scorer.scores) >= _KNOWN_SCORES:
            scorer.scores.clear()
        scorer.scores[key] = (result, band, kept)
    return HealthScore(result, band, scorer, shown, kept, key)


def _scores_key(shown: tuple[Any, ...], named: tuple[bool, ...]) -> tuple[Any, ...] | None:
    """What a whole score is remembered under: every component's :func:`_memo_key`, or None
    when one of them is not remembered."""
    key: list[Any] = []
    for given, is_named in zip(shown, named, strict=True):  # _memo_key, inlined: per customer
        if given is None or (given.__class__ is int and -_SMALL < given < _SMALL):
            key.append(given)
        elif is_named and isinstance(given, (set, frozenset)):
            key.append(frozenset(given))
        else:
            return None
    return tuple(key)


_Known = tuple[float, float, "tuple[str, ...] | None"]  # value, rounded, names sorted (or None)
_UNKEPT = object()  # an input not remembered: computed each time
_KNOWN_INPUTS = 1024  # per component; then new inputs are computed each time
_KNOWN_SCORES = 4096  # whole scores by their inputs; then they are forgotten and start again
_SMALL = 1 << 31


def _memo_key(shown: Any, named: bool) -> Any:
    """What a component's value is remembered under: no input, a count (an int of normal
    size), or a set of names as a frozenset. Anything else (a float, a huge number, a string,
    a JSON object from a property) is computed each time, so the memo stays small and exact."""
    kind = shown.__class__
    if shown is None or (kind is int and -_SMALL < shown < _SMALL):
        return shown
    if named and isinstance(shown, (set, frozenset)):
        return frozenset(shown)
    return _UNKEPT


def _value(value_of: Callable[[Any], float], shown: Any, key: Any) -> _Known:
    """A component's value for ``shown``, that value rounded as the history keeps it, and the
    input's names sorted when it is a set of names (None otherwise: shown as it came)."""
    value = value_of(shown)
    names = tuple(sorted(key)) if isinstance(key, frozenset) else None
    return value, round(value, 3), names


@dataclass(frozen=True)
class _Scorer:
    """A definition made ready to score many customers: each component's value function
    with its settings bound, the weights' sum, and the band of every score 0–100. Built
    once per definition: a batch of 1,000 events scores 1,000 customers, and looking each
    component's kind and each band up again per customer was most of a score's cost. Each
    component also remembers its value (exact and rounded) for the inputs it has seen: most
    customers share a few small counts, and ``round(x, 3)`` of a float is slow in Python. And
    it remembers whole scores by those inputs, so most customers cost one lookup: the loop
    over the components was 3.2 µs a customer, of a batch's ~36 ms of API CPU about 3 ms."""

    # id, weight, value function, whether its input is a set of names (shown sorted), and
    # input → (value, value rounded to 3 places, the names sorted or None)
    components: tuple[tuple[str, float, Callable[[Any], float], bool, dict[Any, _Known]], ...]
    weights: float
    bands: tuple[str, ...]
    ids: tuple[str, ...]  # the components' ids, in order
    named: tuple[bool, ...]  # per component: whether its input is a set of names
    # the remembered inputs of every component → score, band and each component's _Known
    scores: dict[tuple[Any, ...], tuple[int, str, tuple[_Known, ...]]]
    made: dict[tuple[Any, ...], Any]  # (a maker, those inputs) → HealthScore.made_once's value


@per_definition
def _scorer(definition: HealthDefinition) -> _Scorer:
    weights = 0.0
    for component in definition.components:  # summed in order, as the score's total is
        weights += component.weight
    return _Scorer(
        components=tuple(
            (c.id, c.weight, value_function(c), isinstance(c, Adoption), {})
            for c in definition.components
        ),
        weights=weights,
        bands=tuple(definition.band_for(n).id for n in range(101)),
        ids=tuple(c.id for c in definition.components),
        named=tuple(isinstance(c, Adoption) for c in definition.components),
        scores={},
        made={},
    )


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
