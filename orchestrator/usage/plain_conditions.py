"""A condition as a plain Python function of a customer's values and prefetched usage answers,
for the few shapes the lifecycle rules are written in; None for anything else.

The lifecycle rules run for every customer an event batch touches. Through the Jinja sandbox
each customer costs a context (the customer as a dict, its attributes, usage and health
objects) and the sandbox's checks on every attribute and call: ~50 µs a customer, most of a
batch's stage-rule time. The rules themselves only compare a few numbers, so a rule whose
syntax tree is made only of the nodes below is turned, once per process, into nested closures
that do exactly what Jinja's compiled code does with those nodes (Python's ``and``, ``or``,
``not``, comparisons and conditional expressions; Jinja adds nothing to them, the sandbox
intercepts no operator), reading:

- the names ``tier``, ``plan``, ``stage``, ``days_since_signup``, ``days_since_enrollment``;
- ``health.score`` and ``health.band``;
- ``usage.count``, ``usage.seen`` and ``usage.weeks_with`` with literal arguments, exactly the
  questions :mod:`orchestrator.usage.prefetch` answers for the whole batch;
- literals (numbers, strings, booleans, none, and tuples or lists of them, for ``in``), and
  ``-`` before a value (``-1`` is parsed as a negation).

Why this keeps the sandbox's guarantee: the sandbox exists so that a condition can read data
but never reach into Python (attributes, methods, globals). The translated function can do
strictly less than the sandboxed one: it reads named values from a dict the caller filled and
applies the listed operators to them; it looks up no attribute, calls no function of the
input, and has no arithmetic (so no ``'x' * 10 ** 9``). Any other node (a filter, a test, an
attribute of ``customer`` or ``attributes``, a computed usage argument, a name it does not
list) makes the whole translation None, and the caller runs the sandboxed expression as
before. Step conditions and templates, which authors write in the console and mail files, are
never translated: only the lifecycle rules use this.

A translated rule that raises (comparing ``None >= 70``, as Jinja would raise too) is not
judged here: the caller runs that customer through the sandbox, which raises the same error
and reports it the way it always did.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

from jinja2 import nodes

from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import parse_condition
from orchestrator.usage.prefetch import Key, node_questions, question_key

# What a translated rule reads: the customer's plain values by name (``NAMES``, plus
# "health.score" / "health.band"), and its prefetched usage answers by key.
Values = Mapping[str, Any]
Answers = Mapping[Key, object]
PlainRule = Callable[[Values, Answers], Any]

NAMES = frozenset({"tier", "plan", "stage", "days_since_signup", "days_since_enrollment"})
_HEALTH = frozenset({"score", "band"})
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_LITERAL = (bool, int, float, str, type(None))


class _Unsupported(Exception):
    """A node outside the translated set: the rule stays with the sandbox."""


@lru_cache(maxsize=256)
def plain_rule(source: str) -> PlainRule | None:
    """``source`` as a plain function, or None when it uses anything not listed above (or
    does not parse: the sandbox reports that)."""
    try:
        return _translate(parse_condition(source))
    except (ConditionError, _Unsupported):
        return None


def _translate(node: nodes.Node) -> PlainRule:
    if isinstance(node, nodes.Const) and isinstance(node.value, _LITERAL):
        value = node.value
        return lambda _v, _a: value
    if isinstance(node, nodes.Tuple | nodes.List):
        items = [_literal(item) for item in node.items]
        constant: Any = tuple(items) if isinstance(node, nodes.Tuple) else items
        if isinstance(node, nodes.List):  # a fresh list each time, as Jinja builds one
            return lambda _v, _a: list(constant)
        return lambda _v, _a: constant
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in NAMES:
        name = node.name
        return lambda v, _a: v[name]
    if (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "health"
        and node.attr in _HEALTH
    ):
        field = f"health.{node.attr}"
        return lambda v, _a: v[field]
    if isinstance(node, nodes.Call):
        return _usage_call(node)
    if isinstance(node, nodes.And):
        left, right = _translate(node.left), _translate(node.right)
        return lambda v, a: left(v, a) and right(v, a)
    if isinstance(node, nodes.Or):
        left, right = _translate(node.left), _translate(node.right)
        return lambda v, a: left(v, a) or right(v, a)
    if isinstance(node, nodes.Not):
        inner = _translate(node.node)
        return lambda v, a: not inner(v, a)
    if isinstance(node, nodes.Neg):
        negated = _translate(node.node)
        return lambda v, a: -negated(v, a)
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        test, then, other = _translate(node.test), _translate(node.expr1), _translate(node.expr2)
        return lambda v, a: then(v, a) if test(v, a) else other(v, a)
    if isinstance(node, nodes.Compare):
        return _compare(node)
    raise _Unsupported(type(node).__name__)


def _literal(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const) and isinstance(node.value, _LITERAL):
        return node.value
    raise _Unsupported(type(node).__name__)


def _compare(node: nodes.Compare) -> PlainRule:
    """``a < b <= c`` as Python chains it: each operand evaluated once, stop at the first
    false comparison."""
    first = _translate(node.expr)
    steps = []
    for operand in node.ops:
        if operand.op not in _COMPARE:
            raise _Unsupported(operand.op)
        steps.append((_COMPARE[operand.op], _translate(operand.expr)))
    if len(steps) == 1:
        ((compare, second),) = steps
        return lambda v, a: compare(first(v, a), second(v, a))

    def chained(v: Values, a: Answers) -> Any:
        left = first(v, a)
        result: Any = True
        for compare, operand in steps:
            right = operand(v, a)
            result = compare(left, right)
            if not result:
                return result
            left = right
        return result

    return chained


def _usage_call(node: nodes.Call) -> PlainRule:
    """A literal ``usage.count/seen/weeks_with`` question: its prefetched answer, as
    :class:`~orchestrator.usage.facts.UsageFacts` would give it."""
    key = question_key(node)
    if key is None:
        raise _Unsupported("usage call")
    assert isinstance(node.node, nodes.Getattr)
    method = node.node.attr
    if method == "count":
        return lambda _v, a: int(a[key])  # type: ignore[call-overload]
    if method == "seen":
        return lambda _v, a: bool(a[key])
    return lambda _v, a: a[key]


# --- Deciding a rule before every answer is at hand -------------------------------------------
#
# Many customers an event batch touches are settled by what is known already: a stage for
# customers past 60 days is false at ``days_since_signup >= 60`` for a customer of three, and
# ``usage.weeks_with('report_created', 4) >= 3 and usage.count('login', within='14d') >= 5``
# is false once the login count (read for the health score) is under five. Asking the
# database for the other answers then costs a scan of each customer's events for nothing.
# ``decided_rule`` gives a rule's truth from the answers at hand, or UNDECIDED.
#
# It is sound: True or False is the truth the plain rule gives once every answer is there,
# whatever those answers are (counts and weeks are ints, seen is a bool), and that rule then
# raises nothing. A part whose answers are missing is passed over only where it cannot
# raise (``_cannot_raise``), and a part that raises here makes the whole rule UNDECIDED, so a
# customer whose rule fails still has every answer read and fails as it always did.


class _Undecided:
    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED: Any = _Undecided()
DecidedRule = Callable[[Values, Answers], Any]  # True, False or UNDECIDED


@lru_cache(maxsize=256)
def decided_rule(source: str) -> DecidedRule | None:
    """``source``'s truth from the answers given (a missing key: not known), or None where
    :func:`plain_rule` is None."""
    try:
        tree = parse_condition(source)
        _translate(tree)  # the same shapes only
        return _guarded(_truth(tree))
    except (ConditionError, _Unsupported):
        return None


def _guarded(truth: DecidedRule) -> DecidedRule:
    def decided(v: Values, a: Answers) -> Any:
        try:
            return truth(v, a)
        except Exception:  # the plain rule raises too, or not: read everything, then see
            return UNDECIDED

    return decided


def _truth(node: nodes.Node) -> DecidedRule:
    """True, False or UNDECIDED: the truth of ``node``'s value."""
    if isinstance(node, nodes.And | nodes.Or):
        kind = type(node)
        parts = [(_truth(part), _cannot_raise(part)) for part in _chain(node, kind)]
        settles = kind is nodes.Or  # the truth of a part that settles the whole: or/True

        def joined(v: Values, a: Answers) -> Any:
            # Python evaluates the parts in turn up to the first that settles the whole. An
            # undecided part that cannot raise is passed over: whether it settles the whole
            # or not, a later part known to settle it settles it the same way.
            passed_over = False
            for truth_of, cannot_raise in parts:
                truth = truth_of(v, a)
                if truth is settles:
                    return settles
                if truth is UNDECIDED:
                    if not cannot_raise:
                        return UNDECIDED
                    passed_over = True
            return UNDECIDED if passed_over else not settles

        return joined
    if isinstance(node, nodes.Not):
        inner = _truth(node.node)

        def negated(v: Values, a: Answers) -> Any:
            truth = inner(v, a)
            return truth if truth is UNDECIDED else not truth

        return negated
    value = _translate(node)
    keys = node_questions(node)
    if not keys:
        return lambda v, a: bool(value(v, a))
    if len(keys) == 1:
        (key,) = keys
        return lambda v, a: bool(value(v, a)) if key in a else UNDECIDED
    return lambda v, a: bool(value(v, a)) if keys <= a.keys() else UNDECIDED


def _chain(node: nodes.Node, kind: type[nodes.Node]) -> list[nodes.Node]:
    """``a and b and c`` (parsed as ``(a and b) and c``) as its parts ``[a, b, c]``: the same
    parts, evaluated in the same order, stopping at the same one."""
    if isinstance(node, kind):
        assert isinstance(node, nodes.BinExpr)
        return _chain(node.left, kind) + _chain(node.right, kind)
    return [node]


_NEVER_RAISE = frozenset({"eq", "ne"})  # between any two of these values


def _cannot_raise(node: nodes.Node) -> bool:
    """Whether evaluating ``node`` raises for no answers (ints, and bools for ``seen``) and no
    customer values. Only what is sure: orderings of numbers, equality, ``in`` a literal
    list, and ``and``, ``or``, ``not`` of such parts."""
    if isinstance(node, nodes.And | nodes.Or):
        return _cannot_raise(node.left) and _cannot_raise(node.right)
    if isinstance(node, nodes.Not):
        return _cannot_raise(node.node)
    if isinstance(node, nodes.Compare):
        operands = [node.expr, *(operand.expr for operand in node.ops)]
        if not all(_cannot_raise(operand) for operand in operands):
            return False
        for operand, (left, right) in zip(node.ops, pairwise(operands), strict=True):
            if operand.op in ("in", "notin"):
                if not isinstance(right, nodes.Tuple | nodes.List):
                    return False
            elif operand.op not in _NEVER_RAISE and not (_numeric(left) and _numeric(right)):
                return False
        return True
    if isinstance(node, nodes.Neg):
        return _numeric(node)
    if isinstance(node, nodes.Const | nodes.Tuple | nodes.List):
        return True  # a literal (the translation allows no other)
    return isinstance(node, nodes.Call | nodes.Name | nodes.Getattr)  # an answer or a value


_NUMBER_NAMES = frozenset({"days_since_signup", "days_since_enrollment"})


def _numeric(node: nodes.Node) -> bool:
    """Whether ``node`` is always a number (bools count): an answer, a day count, a numeric
    literal, or one of them negated."""
    if isinstance(node, nodes.Neg):
        return _numeric(node.node)
    if isinstance(node, nodes.Const):
        return isinstance(node.value, bool | int | float)
    if isinstance(node, nodes.Name):
        return node.name in _NUMBER_NAMES
    return isinstance(node, nodes.Call)  # a usage answer: count, weeks (int) or seen (bool)
