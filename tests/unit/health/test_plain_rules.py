"""Lifecycle rules as plain functions (usage/plain_conditions.py) give what the sandboxed
expression gives, value for value and error for error, over customers whose values cover the
edges (no score, no plan, windows at zero); and anything outside the translated shapes (other
names, attributes, filters, tests, arithmetic, computed usage arguments) is left to the
sandbox."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from orchestrator.errors import ConditionError
from orchestrator.guards.jinja_steps import step_budget
from orchestrator.health.lifecycle import load_lifecycle
from orchestrator.journeys.conditions import compile_condition
from orchestrator.usage import plain_conditions
from orchestrator.usage.facts import HealthFacts, UsageFacts
from orchestrator.usage.plain_conditions import UNDECIDED
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


class Customer(NamedTuple):
    """The columns a translated rule reads of a customer's row."""

    tier: str
    plan: str
    stage: str | None
    health_score: int | None
    health_band: str | None


def as_called(rule: Any) -> Any:
    """A translated rule called as these tests call it: (values by name, answers)."""
    if rule is None:
        return None

    def called(values: dict[str, Any], answers: Any) -> Any:
        customer = Customer(
            values["tier"],
            values["plan"],
            values["stage"],
            values["health.score"],
            values["health.band"],
        )
        assert values["days_since_enrollment"] == values["days_since_signup"]
        return rule(customer, values["days_since_signup"], answers)

    return called


def plain_rule(source: str) -> Any:
    return as_called(plain_conditions.plain_rule(source))


def decided_rule(source: str) -> Any:
    return as_called(plain_conditions.decided_rule(source))


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
    with step_budget():  # as evaluate_condition and the stage rules run it
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


# --- Rules decided before every answer is read (decided_rule) ---------------------------------

SHIPPED_RULES = [
    str(stage.when)
    for stage in load_lifecycle(ROOT / "journeys" / "lifecycle.yaml").stages
    if stage.when
]
UNKNOWN_ANSWERS = (0, 1, 3, 8)  # what a missing answer may turn out to be (seen: 0 / not 0)


def decisions(source: str) -> Iterator[tuple[Any, bool, str]]:
    """For every customer of :func:`contexts`, every set of answers known and every value the
    others may turn out to have: (the decision from what is known, what the plain rule gives
    once all are read, the case). Each decision must be UNDECIDED or that outcome."""
    rule, decided = plain_rule(source), decided_rule(source)
    assert rule is not None and decided is not None
    for values, answers in contexts([source]):
        keys = sorted(answers, key=repr)
        for size in range(len(keys) + 1):
            for known_keys in itertools.combinations(keys, size):
                known = {key: answers[key] for key in known_keys}
                decision = decided(values, known)
                if decision is UNDECIDED:
                    continue
                missing = [key for key in keys if key not in known]
                for turned_out in itertools.product(UNKNOWN_ANSWERS, repeat=len(missing)):
                    full = {**known, **dict(zip(missing, turned_out, strict=True))}
                    run = outcome(lambda v=values, a=full: bool(rule(v, a)))
                    yield decision, run == ("value", decision), f"{values} {known} {full} {run}"


@pytest.mark.parametrize("source", TRANSLATED + SHIPPED_RULES)
def test_a_rule_decided_early_is_what_it_gives_with_every_answer(source: str) -> None:
    for decision, same, case in decisions(source):
        assert decision in (True, False), case
        assert same, (source, case)


def test_the_shipped_rules_are_decided_without_the_answers_they_do_not_need() -> None:
    """A customer of a few days is not self-sufficient whatever its weeks of reports; with
    four logins it is not active either: neither needs its weeks read. With five it does."""
    sufficient, active = decided_rule(SHIPPED_RULES[2]), decided_rule(SHIPPED_RULES[1])
    assert sufficient is not None and active is not None
    young = dict(contexts(SHIPPED_RULES)[0][0], days_since_signup=3, days_since_enrollment=3)
    assert sufficient(young, {}) is False
    logins = ("count", "login", "14d")
    assert active(young, {logins: 4}) is False
    assert active(young, {logins: 5}) is UNDECIDED
    weeks = next(key for key in usage_questions([SHIPPED_RULES[1]]) if key[0] == "weeks_with")
    assert active(young, {logins: 5, weeks: 3}) is True


def test_a_part_that_could_raise_is_never_passed_over() -> None:
    """``plan > 3`` raises for a plan that is text; known false on the right, the left is
    still needed, since the rule raises (and the customer is named) rather than being false.
    A comparison of answers with numbers cannot raise, so it can be passed over."""
    risky = decided_rule("plan > usage.count('login') and days_since_signup > 100")
    safe = decided_rule("usage.count('login') > 3 and days_since_signup > 100")
    assert risky is not None and safe is not None
    values = dict(
        contexts(SHIPPED_RULES)[0][0], plan="pro", days_since_signup=3, days_since_enrollment=3
    )
    assert risky(values, {}) is UNDECIDED
    assert safe(values, {}) is False


def random_rule(draw: random.Random, depth: int = 0) -> str:
    """A rule of the translated shapes: and, or, not, comparisons of answers, values and
    literals, conditional expressions."""
    leaves = [
        "usage.count('login', within='14d')",
        "usage.seen('report_created')",
        "usage.weeks_with('report_created', 4)",
        "days_since_signup",
        "health.score",
        "plan",
        "3",
        "0",
        "'pro'",
        "none",
        "-1",
    ]
    if depth > 2 or draw.random() < 0.3:
        left, right = draw.choice(leaves), draw.choice(leaves)
        op = draw.choice([">=", "<", "==", "!=", "in", "not in"])
        if "in" in op:
            right = draw.choice(["(1, 3)", "['pro', 'basic']", "plan"])
        return f"{left} {op} {right}"
    kind = draw.choice(["and", "or", "not", "if", "leaf"])
    if kind == "not":
        return f"not ({random_rule(draw, depth + 1)})"
    if kind == "if":
        parts = [random_rule(draw, depth + 1) for _ in range(3)]
        return f"({parts[0]}) if ({parts[1]}) else ({parts[2]})"
    if kind == "leaf":
        return draw.choice(leaves)
    return f"({random_rule(draw, depth + 1)}) {kind} ({random_rule(draw, depth + 1)})"


def test_random_rules_decided_early_are_what_they_give_with_every_answer() -> None:
    draw = random.Random(20261203)
    decided_some = 0
    for _ in range(150):
        source = random_rule(draw)
        if plain_rule(source) is None:
            continue
        for decision, same, case in decisions(source):
            decided_some += 1
            assert same, (source, decision, case)
    assert decided_some > 1000  # the rules were decided often enough to mean something


def test_random_rules_give_what_the_sandbox_gives() -> None:
    draw = random.Random(20261204)
    compared = 0
    for _ in range(150):
        source = random_rule(draw)
        rule = plain_rule(source)
        if rule is None:
            continue
        for values, answers in contexts([source]):
            plain = outcome(lambda v=values, a=answers, r=rule: r(v, a))
            jinja = outcome(lambda v=values, a=answers, s=source: sandboxed(s, v, a))
            assert plain == jinja, (source, values, answers)
            assert type(plain[1]) is type(jinja[1])
            compared += 1
    assert compared > 5000


HOSTILE = "plan == '\\'); import os #' or tier == \"x\\ny\\x00\" or stage in ('__import__',)"


def test_no_text_of_a_rule_becomes_code() -> None:
    """A rule's literals are values the function holds, never source it runs: text that
    would close a string and run a statement compares as text, as in the sandbox."""
    rule, decided = plain_rule(HOSTILE), decided_rule(HOSTILE)
    assert rule is not None and decided is not None
    for values, answers in contexts([HOSTILE]):
        for plan in ("'); import os #", "pro"):
            values = {**values, "plan": plan}
            assert outcome(lambda v=values, a=answers: rule(v, a)) == outcome(
                lambda v=values, a=answers: sandboxed(HOSTILE, v, a)
            )
            assert decided(values, answers) is bool(rule(values, answers))
    compiled = plain_conditions.plain_rule(HOSTILE), plain_conditions.decided_rule(HOSTILE)
    for function in compiled:
        assert function is not None
        text = [const for const in function.__code__.co_consts if isinstance(const, str)]
        assert not any("import" in const or "\n" in const for const in text), text


def test_a_long_chain_runs_as_one_expression() -> None:
    """A hundred and fifty parts joined by ``and`` compile flat (not nested as Jinja nests
    them) and give the sandbox's value; three hundred, past what Jinja compiles, stay with
    the sandbox, which refuses them."""
    source = " and ".join(f"usage.count('login') > {n}" for n in range(150))
    rule, decided = plain_rule(source), decided_rule(source)
    assert rule is not None and decided is not None
    for logins in (0, 75, 150):
        answers: dict[Any, object] = {("count", "login", None): logins}
        values = contexts([source])[0][0]
        assert rule(values, answers) == sandboxed(source, values, answers)
        assert decided(values, answers) is (logins == 150)
    too_long = " and ".join(f"usage.count('login') > {n}" for n in range(300))
    assert plain_rule(too_long) is None and decided_rule(too_long) is None
    with pytest.raises(ConditionError, match="nested too deeply"):
        compile_condition(too_long)
