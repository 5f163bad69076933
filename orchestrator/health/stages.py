"""Moving customers through the lifecycle stages by the rules of ``journeys/lifecycle.yaml``,
for the customers an event batch or the daily health job touched (never a scan of all
customers), inside the caller's transaction (which holds their locks).

Rules only move forward (see :mod:`orchestrator.health.lifecycle`): the furthest stage past
the current one whose ``when`` holds. A pinned stage is never moved; a stage set by hand is
moved only when the rules reach a later one. A condition that fails to evaluate is logged and
moves nobody.

The rules of the stages past a customer's are run as one sandboxed expression, furthest first
(``0 if (rule) else 1 if (rule) else ... -1``), built and checked once per process: Jinja's
per-call set-up, not the rules, was most of their cost (three calls per customer).

When every rule is of the few shapes :mod:`orchestrator.usage.plain_conditions` translates
(the shipped ones are), they run as plain functions of the customer's columns and the
prefetched usage answers instead (~5 µs a customer against ~50 through the sandbox), and only
those columns are read. A customer whose plain rule raises is run through the sandbox, which
raises the same and logs it as always.

Before any usage question is asked, the rules are tried on what is known already (the
customer's columns and the answers the health inputs gave): a customer of three days is not
self-sufficient at 60, one with four logins is not active at five, whatever its weeks of
reports. Only the customers not settled that way have their other answers read (one statement
for them all): a settled customer is spared a scan of its events
(:func:`~orchestrator.usage.plain_conditions.decided_rule` says why the outcome is the same).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from jinja2 import nodes
from sqlalchemy import Connection, select

from orchestrator.db.tables import customers
from orchestrator.db.values import one_of_param
from orchestrator.delivery.facts import customer_from_row
from orchestrator.enrollment.stages import move_stage
from orchestrator.errors import ConditionError
from orchestrator.guards import jinja_steps
from orchestrator.guards.jinja_steps import BUDGET
from orchestrator.health.lifecycle import Lifecycle, Stage
from orchestrator.journeys.conditions import (
    compile_condition,
    evaluate_condition,
    parse_condition,
)
from orchestrator.journeys.decide import condition_context
from orchestrator.usage.facts import usage_context
from orchestrator.usage.plain_conditions import (
    UNDECIDED,
    CustomerValues,
    DecidedRule,
    PlainRule,
    decided_rule,
    plain_rule,
)
from orchestrator.usage.prefetch import Key, prefetch_rest, usage_questions

log = logging.getLogger(__name__)


class StageRow(CustomerValues, Protocol):
    """What the plain rules and the stage moves read of a customer: the columns of
    ``_PLAIN_COLUMNS``, by name (a :class:`StageFacts`, or a row the caller read with these
    columns)."""

    @property
    def id(self) -> int: ...
    @property
    def stage_source(self) -> str | None: ...
    @property
    def signed_up_at(self) -> datetime: ...


class StageFacts(NamedTuple):
    """A :class:`StageRow` built by a caller (a customer whose score just moved)."""

    id: int
    stage: str | None
    stage_source: str | None
    signed_up_at: datetime
    tier: str
    plan: str
    health_score: int | None
    health_band: str | None


def advance_stages(
    connection: Connection,
    customer_ids: Sequence[int],
    lifecycle: Lifecycle,
    now: datetime,
    answered: Mapping[int, Mapping[Key, object]] | None = None,
    facts: Mapping[int, StageRow] | None = None,
) -> list[dict[str, Any]]:
    """Move each customer as far as the rules say; the ``stage_changed`` event rows to store.
    ``answered``: answers to the rules' usage questions the caller has already, as of ``now``;
    ``facts``: the customers as they stand now in this transaction, which the caller holds
    under their lock (read here when a customer is missing or the rules need the sandbox)."""
    if not customer_ids:
        return []
    wanted = sorted(set(customer_ids))
    plain = _plain_rules(lifecycle)
    rank: dict[str | None, int] = {s.id: i for i, s in enumerate(lifecycle.stages)}  # .rank()
    postgres = connection.dialect.name == "postgresql"
    rows: Sequence[Any]
    if plain is not None and facts is not None and facts.keys() >= set(wanted):
        rows = [facts[cid] for cid in wanted]
    else:
        rows = connection.execute(  # what the rules read of the customer, at once
            _CUSTOMERS[(postgres, plain is not None)], {"ids": wanted}
        ).all()
    movable = [
        row
        for row in rows
        if row.stage_source != "pinned" and rank.get(row.stage, -1) + 1 < len(lifecycle.stages)
    ]
    targets: dict[int, Stage | None] = {}
    asking: Sequence[Any] = movable
    if plain is not None:  # settled by what is known: nothing more is read for them
        asking = []
        decided = _decided_rules(lifecycle)
        for row in movable:
            known = answered.get(row.id, {}) if answered else {}
            target = _settled(row, lifecycle, rank, decided, now, known)
            if target is UNDECIDED:
                asking.append(row)
            else:
                targets[row.id] = target
    answers = prefetch_rest(
        connection, [row.id for row in asking], stage_questions(lifecycle), now, answered or {}
    )  # one statement for every literal usage question of the rules not known, these customers
    sandboxed: Sequence[Any] = asking
    if plain is not None:
        sandboxed = []
        for row in asking:
            known = answers.get(row.id, {})
            try:
                targets[row.id] = _furthest_plain(row, lifecycle, rank, plain, now, known)
            except Exception:  # the sandbox raises it again, and names the rule that failed
                sandboxed.append(row)
        if sandboxed:  # whole rows, for the sandbox's context
            ids = [row.id for row in sandboxed]
            sandboxed = connection.execute(_CUSTOMERS[(postgres, False)], {"ids": ids}).all()
    for row in sandboxed:
        targets[row.id] = _furthest(
            connection, row, lifecycle, lifecycle.rank(row.stage), now, answers.get(row.id)
        )
    events = []
    for row in movable:
        target = targets[row.id]
        if target is None:
            continue
        reason = target.when or "the first stage"
        events.append(move_stage(connection, row.id, row.stage, target.id, "rules", reason, now))
        log.info("customer %d: stage %s -> %s (rules)", row.id, row.stage, target.id)
    return events


# What the rules read of a customer when they all run as plain functions (plain_conditions.py).
_PLAIN_COLUMNS = (
    customers.c.id,
    customers.c.stage,
    customers.c.stage_source,
    customers.c.signed_up_at,
    customers.c.tier,
    customers.c.plan,
    customers.c.health_score,
    customers.c.health_band,
)


# The customers ``:ids``, whole (for the sandbox's context) or the plain rules' columns; built
# once per dialect.
_CUSTOMERS = {
    (postgres, plain): select(*(_PLAIN_COLUMNS if plain else (customers,))).where(
        one_of_param(customers.c.id, "ids", postgres)
    )
    for postgres in (False, True)
    for plain in (False, True)
}


def _plain_rules(lifecycle: Lifecycle) -> tuple[PlainRule | None, ...] | None:
    """Every stage's rule as a plain function (None for the first stage, which has none), or
    None unless every rule translates (then they all run in the sandbox)."""
    return _plain_rules_of(tuple(stage.when for stage in lifecycle.stages))


@lru_cache(maxsize=64)
def _plain_rules_of(sources: tuple[str | None, ...]) -> tuple[PlainRule | None, ...] | None:
    rules = tuple(None if source is None else plain_rule(str(source)) for source in sources)
    pairs = zip(rules, sources, strict=True)
    return rules if all(rule is not None for rule, source in pairs if source) else None


def _decided_rules(lifecycle: Lifecycle) -> tuple[DecidedRule | None, ...]:
    """Every stage's rule as :func:`~orchestrator.usage.plain_conditions.decided_rule` (None
    for the first stage); only asked when :func:`_plain_rules` translates them all."""
    return _decided_rules_of(tuple(stage.when for stage in lifecycle.stages))


@lru_cache(maxsize=64)
def _decided_rules_of(sources: tuple[str | None, ...]) -> tuple[DecidedRule | None, ...]:
    return tuple(None if source is None else decided_rule(str(source)) for source in sources)


def _settled(
    row: Any,
    lifecycle: Lifecycle,
    rank: Mapping[str | None, int],
    rules: tuple[DecidedRule | None, ...],
    now: datetime,
    known: Mapping[Key, object],
) -> Any:  # a Stage, None or UNDECIDED
    """What :func:`_furthest_plain` gives once every answer is read, from the answers
    ``known`` already; UNDECIDED when that needs more (or a rule fails: it is run in full
    and fails as it always did)."""
    days = max(0, (now - row.signed_up_at).days)  # _days_since_signup, inlined: per customer
    stages = lifecycle.stages
    for index in range(len(stages) - 1, rank.get(row.stage, -1), -1):
        rule = rules[index]
        if rule is None:
            return stages[index]
        truth = rule(row, days, known)
        if truth is UNDECIDED or truth:
            return UNDECIDED if truth is UNDECIDED else stages[index]
    return None


def _furthest_plain(
    row: Any,
    lifecycle: Lifecycle,
    rank: Mapping[str | None, int],
    rules: tuple[PlainRule | None, ...],
    now: datetime,
    answers: Mapping[Key, object],
) -> Stage | None:
    """What :func:`_furthest` gives, from the plain rules: the furthest later stage whose rule
    holds, or the first stage (no rule) for a customer with none; raises what a rule raises."""
    days = _days_since_signup(row, now)
    stages = lifecycle.stages
    for index in range(len(stages) - 1, rank.get(row.stage, -1), -1):
        rule = rules[index]
        if rule is None or rule(row, days, answers):
            return stages[index]
    return None


def _days_since_signup(row: StageRow, now: datetime) -> int:
    """What a plain rule reads as ``days_since_signup`` (the customer's row gives the rest)."""
    return max(0, (now - row.signed_up_at).days)


def stage_questions(lifecycle: Lifecycle) -> frozenset[Key]:
    """The literal usage questions of the stage rules (answered for a batch at once)."""
    return usage_questions(stage.when for stage in lifecycle.stages if stage.when is not None)


def _furthest(
    connection: Connection,
    row: Any,
    lifecycle: Lifecycle,
    current: int,
    now: datetime,
    answers: Mapping[Key, object] | None,
) -> Stage | None:
    later = lifecycle.stages[current + 1 :]
    if not later:
        return None
    customer_id = row.id
    facts = customer_from_row(row)
    health = (row.health_score, row.health_band)
    usage = usage_context(
        connection, customer_id, facts.signed_up_at, now, health=health, answers=answers
    )
    context = condition_context(facts, now, usage)
    furthest_first = tuple(reversed(later))
    ruled = [stage for stage in furthest_first if stage.when is not None]
    rule = furthest_rule(tuple(str(stage.when) for stage in ruled)) if ruled else None
    if rule is not None:
        budget = BUDGET.set([jinja_steps.MAX_STEPS])  # as evaluate_condition opens one a rule
        try:
            chosen = rule(**context)
        except Exception:  # run them one by one below: that names the rule that failed
            chosen = None
        finally:
            BUDGET.reset(budget)
        if isinstance(chosen, int) and chosen >= 0:
            return ruled[chosen]
        if isinstance(chosen, int):  # none holds: the first stage, for a customer with none
            return next((stage for stage in furthest_first if stage.when is None), None)
    for stage in furthest_first:
        if stage.when is None:
            return stage
        try:
            if evaluate_condition(stage.when, context):
                return stage
        except ConditionError as exc:
            log.warning("customer %d: stage %s rule failed: %s", customer_id, stage.id, exc)
            return None
    return None


@lru_cache(maxsize=256)
def furthest_rule(sources: tuple[str, ...]) -> Callable[..., Any] | None:
    """The rules ``sources`` (furthest stage first) as one expression giving the index of the
    first that holds, or -1: each rule is evaluated as it would be alone, in the same order,
    and the ones after a true rule are not evaluated. None when a rule does not compile alone
    or the joined expression does not parse into exactly these rules (then each is run alone,
    which reports the problem)."""
    try:
        alone = [parse_condition(source) for source in sources]
        for source in sources:
            compile_condition(source)
        joined = " else ".join(f"{i} if ({source})" for i, source in enumerate(sources))
        joined += " else -1"
        tree: nodes.Expr | None = parse_condition(joined)
    except ConditionError:
        return None
    for i, rule in enumerate(alone):  # the parentheses hold each rule whole, nothing else
        if not (
            isinstance(tree, nodes.CondExpr)
            and tree.test == rule
            and isinstance(tree.expr1, nodes.Const)
            and tree.expr1.value == i
        ):
            return None
        tree = tree.expr2
    if not (isinstance(tree, nodes.Neg) and tree.node == nodes.Const(1)):
        return None
    compiled: Callable[..., Any] = compile_condition(joined)
    return compiled
