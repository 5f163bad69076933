"""Step conditions: one-line Jinja expressions run in a sandbox, so a journey file can read
customer data but never call into Python."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConditionError

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


@lru_cache(maxsize=1024)
def compile_condition(source: str) -> Any:
    """Compile once per distinct source; raise ConditionError naming the syntax problem."""
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ConditionError(f"invalid condition {source!r}: {exc.message}") from None


def evaluate_condition(source: str, context: Mapping[str, Any]) -> bool:
    """Evaluate ``source``; an undefined name or a runtime error becomes a ConditionError."""
    expression = compile_condition(source)
    try:
        return bool(expression(**context))
    except Exception as exc:  # the sandbox and StrictUndefined raise many kinds
        raise ConditionError(f"condition {source!r} failed: {exc}") from None
