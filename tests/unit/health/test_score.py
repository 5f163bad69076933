"""The pure health score: component weights, and when a band's actions fire."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from orchestrator.health.loader import load_health
from orchestrator.health.score import (
    ActionHistory,
    _scorer,
    actions_to_fire,
    score,
    value_function,
)
from tests.support.environment import STANDARD_JOURNEYS, START

DEFINITION = load_health(STANDARD_JOURNEYS / "health.yaml")
KEY_FEATURES = ("report_created", "workflow_created", "integration_connected", "teammate_invited")


def test_the_score_weighs_the_components() -> None:
    assert score(DEFINITION, {}).score == round(100 * (15 + 12.5) / 100)  # no events: 28
    full = {"logins": 10, "adoption": set(KEY_FEATURES), "support_tickets": 0, "nps": 10}
    assert (score(DEFINITION, full).score, score(DEFINITION, full).band) == (100, "upsell")
    half = {"logins": 5, "adoption": {"report_created", "x"}, "support_tickets": 5, "nps": 6}
    result = score(DEFINITION, half)
    assert result.score == round(30 * 0.5 + 30 * 0.25 + 0 + 25 * 0.6)  # 38
    assert result.band == "at_risk"
    assert result.components["adoption"]["raw"] == ["report_created", "x"]


def test_band_actions_fire_on_entry_outside_the_cooldown_and_the_first_days() -> None:
    band = DEFINITION.band("upsell")
    week = timedelta(days=7)
    signed_up = START - timedelta(days=30)
    fire = actions_to_fire
    assert fire(DEFINITION, band, "low", signed_up, ActionHistory(None, None), week, START)
    assert not fire(DEFINITION, band, "low", START, ActionHistory(None, None), week, START)
    assert not fire(DEFINITION, band, "low", signed_up, ActionHistory("upsell", None), week, START)
    recent = ActionHistory("tips", START - timedelta(days=6))
    assert not fire(DEFINITION, band, "low", signed_up, recent, week, START)
    old = ActionHistory("tips", START - timedelta(days=8))
    assert fire(DEFINITION, band, "low", signed_up, old, week, START)


def test_every_score_gets_the_band_whose_range_holds_it() -> None:
    """The scorer's band table against the definition's own rule, across the whole range."""
    for logins in range(11):
        for tickets in range(6):
            for nps in (None, 0, 3.5, 6, 10, "n/a"):
                raw = {"logins": logins, "support_tickets": tickets, "nps": nps}
                result = score(DEFINITION, raw)
                assert result.band == DEFINITION.band_for(result.score).id


def test_a_reloaded_definition_scores_with_its_own_bands() -> None:
    """Scorers are kept per definition object: a definition loaded again after its file
    changed must not be scored with the old one's bands."""
    raised = tuple(
        band.model_copy(update={"min": 60}) if band.id == "tips" else band
        for band in DEFINITION.bands
    )
    reloaded = DEFINITION.model_copy(update={"bands": raised})
    assert score(DEFINITION, {"logins": 10}).score == 58
    assert score(DEFINITION, {"logins": 10}).band == "tips"
    assert score(reloaded, {"logins": 10}).band == "at_risk"


def plain_score(raw: dict[str, Any]) -> tuple[int, dict[str, dict[str, Any]]]:
    """The score as the health file defines it, computed from scratch each time."""
    parts, total = {}, 0.0
    for component in DEFINITION.components:
        shown = raw.get(component.id)
        value = value_function(component)(shown)
        total += component.weight * value
        if isinstance(shown, (set, frozenset)):
            shown = sorted(shown)
        parts[component.id] = {"raw": shown, "value": round(value, 3), "weight": component.weight}
    return round(100 * total / sum(c.weight for c in DEFINITION.components)), parts


HOSTILE_NPS = (None, 0, 7, -3, 10**40, -(10**40), 6.5, float("nan"), "8", "x" * 100_000, {"a": 1})


def test_remembered_inputs_score_as_computed_afresh() -> None:
    """Each component remembers its value per input: asked again, in any order, every input
    gives what computing it from scratch gives, and each result owns its components."""
    raws: list[dict[str, Any]] = [
        {
            "logins": logins,
            "adoption": set(KEY_FEATURES[: logins % 5]) | ({"x"} if logins % 3 else set()),
            "support_tickets": logins % 7,
            "nps": HOSTILE_NPS[logins % len(HOSTILE_NPS)],
        }
        for logins in range(40)
    ]
    raws += [{"logins": 10**30}, {"adoption": ["b", "a"]}, {"adoption": frozenset({"b", "a"})}]
    for _ in range(3):
        for raw in raws + raws[::-1]:
            result = score(DEFINITION, raw)
            expected = plain_score(raw)
            assert (result.score, json.dumps(result.components)) == (
                expected[0],
                json.dumps(expected[1]),
            )
    first, second = score(DEFINITION, raws[3]), score(DEFINITION, raws[3])
    first.components["adoption"]["raw"].append("mutated")
    assert "mutated" not in second.components["adoption"]["raw"]
    assert first.components["logins"] is not second.components["logins"]


def test_the_remembered_inputs_stay_few_and_small() -> None:
    """At most 1,024 inputs a component, and never a string, a float or a huge number."""
    for logins in range(5_000):
        score(DEFINITION, {"logins": logins, "nps": HOSTILE_NPS[logins % len(HOSTILE_NPS)]})
    for *_, known in _scorer(DEFINITION).components:
        assert len(known) <= 1024
        for key in known:
            assert key is None or isinstance(key, frozenset) or type(key) is int
            assert not isinstance(key, int) or abs(key) < 2**31


def test_whole_scores_are_remembered_few_and_small_and_stay_exact() -> None:
    """A score is remembered by its inputs only when every input is (no input, a small int,
    a set of names), at most 4,096 of them: past that the memory starts again and a score
    asked again is what computing it afresh gives."""
    scorer = _scorer(DEFINITION)
    for logins in range(10_000):
        raw = {"logins": logins % 600, "support_tickets": logins // 600}
        result = score(DEFINITION, raw)
        assert (result.score, result.components) == plain_score(raw)
    assert 0 < len(scorer.scores) <= 4096
    for key in scorer.scores:
        for part in key:
            assert part is None or isinstance(part, frozenset) or type(part) is int
    before = len(scorer.scores)
    for nps in HOSTILE_NPS[4:]:  # a float, a huge number, a string, an object: not remembered
        score(DEFINITION, {"nps": nps})
    assert len(scorer.scores) == before


def test_what_is_made_of_equal_inputs_is_made_once_and_kept_with_the_definition() -> None:
    """What is made of a score's components (the history's JSON) is shared only by scores
    of one definition with the same remembered inputs, and only for the same maker."""
    made: list[dict[str, Any]] = []

    def make(components: dict[str, Any]) -> str:
        made.append(components)
        return json.dumps(components)

    raw = {"logins": 3, "adoption": {"report_created"}}
    same = {"logins": 3, "adoption": frozenset({"report_created"})}
    reloaded = DEFINITION.model_copy()
    first = score(DEFINITION, raw).made_once(make)
    assert score(DEFINITION, same).made_once(make) is first
    assert len(made) == 1
    assert score(DEFINITION, {"logins": True}).made_once(make) != first  # True is not 1 here
    assert score(reloaded, raw).made_once(make) == first  # equal, but made again
    assert score(DEFINITION, raw).made_once(lambda c: json.dumps(c) + " ") != first
    assert score(DEFINITION, {"nps": "x" * 100}).made_once(make)  # not remembered: made each time
    assert score(DEFINITION, {"nps": "x" * 100}).made_once(make)
    assert len(made) == 5
    assert len(_scorer(DEFINITION).made) <= 4096
