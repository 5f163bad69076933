"""Lifecycle rules as plain functions (usage/plain_conditions.py) give what the sandboxed
expression gives, value for value and error for error, over customers whose values cover the
edges (no score, no plan, windows at zero); and anything outside the translated shapes (other
names, attributes, filters, tests, arithmetic, computed usage arguments) is left to the
sandbox."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.health.lifecycle import load_lifecycle
from orchestrator.journeys.conditions import compile_condition
from orchestrator.usage.facts import HealthFacts, UsageFacts
from orchestrator.usage.plain_conditions import plain_rule
from orchestrator.usage.prefetch import usage_questions
from tests.support.environment import ROOT

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
TRANSLATED = [
    "usage.seen('workflow_created') and usage.seen('integration_connected')"
    " and usage.count('login', within='14d') >= 5",
    "usage.weeks_with('report_created', 4) >= 3 and usage.count('login', within='14d') >= 5",
    "days_since_signup >= 60 and usage.weeks_with('report_created', 8) >= 7"
    " and usage.count('support_ticket_opened', within='30d') <= 1 and (health.score or 0) >= 70",
    "health.score >= 70",  # raises for a customer without a score, in both
    "health.band == 'at_risk' or health.band in ('ok', 'good') and not (plan != 'pro')",
    "tier in ['enterprise', 'scale'] and stage not in ('x',) or days_since_enrollment > 3",
    "1 < usage.count(name='login') <= 5 < days_since_signup",
    "usage.count('login') if plan == 'pro' else -1",
    "usage.weeks_with(name='report_created') or usage.seen('login', '14d') or none",
    "plan > 3",  # a string against a number: raises in both
    "true and false or 'text'",
]
SANDBOX_ONLY = [
    "customer.email == 'a'",
    "attributes.seats > 3",
    "plan | lower == 'pro'",
    "plan is defined",
    "usage.count('login') * 2 > 3",
    "usage.count('login', within=window) > 0",
    "usage.days_since('login') < 3",
    "usage.weeks_with('report_created', 40) > 0",
    "usage._engine",
    "health.__class__",
    "no_such_name > 0",
    "range(10) | length > 3",
    "[plan] == ['pro']",
    "plan if true",
    "plan ~ 'x'",
    "plan ==",
]


def contexts(sources: list[str]) -> list[tuple[dict[str, Any], dict[Any, object]]]:
    """Customers as the plain rules see them (values, answers), one per combination."""
    keys = sorted(usage_questions(sources), key=repr)
    found = []
    for n, (score, plan, days) in enumerate(
        itertools.product((None, 0, 69, 70, 95), (None, "pro", "basic"), (0, 4, 60, 61))
    ):
        values: dict[str, Any] = {
            "tier": ("enterprise", "smb", "scale")[n % 3],
            "plan": plan,
            "stage": ("x", "onboarding", None)[n % 3],
            "days_since_signup": days,
            "days_since_enrollment": days,
            "health.score": score,
            "health.band": {None: None, 0: "at_risk", 69: "ok", 70: "good", 95: "good"}[score],
        }
        answers: dict[Any, object] = {key: (n * 7 + i) % 9 for i, key in enumerate(keys)}
        found.append((values, answers))
    return found


def sandboxed(source: str, values: dict[str, Any], answers: dict[Any, object]) -> Any:
    context = {name: value for name, value in values.items() if "." not in name}
    context["usage"] = UsageFacts(None, 1, NOW, answers)  # type: ignore[arg-type]
    context["health"] = HealthFacts(
        None,  # type: ignore[arg-type]
        1,
        (values["health.score"], values["health.band"]),
    )
    return compile_condition(source)(**context)


def outcome(run: Any) -> tuple[str, Any]:
    try:
        return ("value", run())
    except Exception as exc:
        return ("raises", type(exc).__name__)


@pytest.mark.parametrize("source", TRANSLATED)
def test_a_translated_rule_gives_what_the_sandbox_gives(source: str) -> None:
    rule = plain_rule(source)
    assert rule is not None
    for values, answers in contexts([source]):
        plain = outcome(lambda v=values, a=answers: rule(v, a))
        jinja = outcome(lambda v=values, a=answers: sandboxed(source, v, a))
        assert plain == jinja, (source, values, answers)
        assert type(plain[1]) is type(jinja[1])  # True stays True, 0 stays 0


@pytest.mark.parametrize("source", SANDBOX_ONLY)
def test_anything_else_stays_with_the_sandbox(source: str) -> None:
    assert plain_rule(source) is None


def test_the_shipped_lifecycle_runs_as_plain_functions() -> None:
    shipped = load_lifecycle(ROOT / "journeys" / "lifecycle.yaml")
    assert all(plain_rule(stage.when) is not None for stage in shipped.stages if stage.when)
