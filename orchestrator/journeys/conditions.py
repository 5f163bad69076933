"""Step conditions: one-line Jinja expressions run in a sandbox, so a journey file can read
customer data but never call into Python."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConditionError
from orchestrator.guards import jinja_steps
from orchestrator.guards.jinja_nesting import MESSAGE, BoundedNesting
from orchestrator.guards.jinja_operators import BoundedOperators
from orchestrator.guards.jinja_steps import BUDGET
from orchestrator.journeys.yaml_files import did_you_mean


class _ConditionSandbox(BoundedNesting, BoundedOperators, ImmutableSandboxedEnvironment):
    """The immutable sandbox, reporting a condition nested too deeply as a syntax error, with
    its repetitions and powers bounded."""


_ENV = _ConditionSandbox(undefined=StrictUndefined)


@lru_cache(maxsize=1024)
def compile_condition(source: str) -> Any:
    """Compile once per distinct source; raise ConditionError naming the syntax problem."""
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        if exc.message == MESSAGE:  # past what Python compiles (guards/jinja_nesting.py)
            raise ConditionError(_too_deep(source)) from None
        reason = _unknown_filter_or_test(source) or exc.message
        raise ConditionError(f"invalid condition {source!r}: {reason}") from None
    except _TOO_DEEP:  # the parser's recursion, which compile_expression does not catch
        raise ConditionError(_too_deep(source)) from None


_TOO_DEEP = (RecursionError, MemoryError)


def _too_deep(source: str) -> str:
    shown = source if len(source) <= 200 else f"{source[:60]}… ({len(source):,} characters)"
    return f"invalid condition {shown!r}: {MESSAGE}"


def _unknown_filter_or_test(source: str) -> str | None:
    """Jinja refuses an unknown filter by name only: name the closest one too (``lowr``)."""
    try:
        tree = parse_condition(source)
    except ConditionError:
        return None
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = _ENV.filters if isinstance(node, nodes.Filter) else _ENV.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            return f"no {kind} {node.name!r}" + did_you_mean(node.name, known)
    return None


def parse_condition(source: str) -> nodes.Expr:
    """The expression's syntax tree, as Jinja compiles it (``stepmail check`` walks it to
    check the names it uses); ConditionError naming the syntax problem."""
    try:
        parser = Parser(_ENV, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            parser.fail(f"unexpected {parser.stream.current.value!r} after the expression")
    except TemplateSyntaxError as exc:
        raise ConditionError(f"invalid condition {source!r}: {exc.message}") from None
    except _TOO_DEEP:
        raise ConditionError(_too_deep(source)) from None
    return expression


def known_filters() -> frozenset[str]:
    return frozenset(_ENV.filters)


def known_tests() -> frozenset[str]:
    return frozenset(_ENV.tests)


def evaluate_condition(source: str, context: Mapping[str, Any]) -> bool:
    """Evaluate ``source``; an undefined name or a runtime error becomes a ConditionError."""
    expression = compile_condition(source)
    budget = BUDGET.set([jinja_steps.MAX_STEPS])  # its calls and walks are charged
    try:
        return bool(expression(**context))
    except Exception as exc:  # the sandbox and StrictUndefined raise many kinds
        raise ConditionError(f"condition {source!r} failed: {exc}") from None
    finally:
        BUDGET.reset(budget)
