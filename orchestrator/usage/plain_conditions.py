"""A condition as a plain Python function of a customer's values and prefetched usage answers,
for the few shapes the lifecycle rules are written in; None for anything else.

The lifecycle rules run for every customer an event batch touches. Through the Jinja sandbox
each customer costs a context (the customer as a dict, its attributes, usage and health
objects) and the sandbox's checks on every attribute and call: ~50 µs a customer, most of a
batch's stage-rule time. The rules themselves only compare a few numbers, so a rule whose
syntax tree is made only of the nodes below is compiled, once per process, into one Python
function that does exactly what Jinja's compiled code does with those nodes (Python's
``and``, ``or``, ``not``, comparisons and conditional expressions; Jinja adds nothing to them,
the sandbox intercepts no operator), reading:

- the names ``tier``, ``plan``, ``stage``, ``days_since_signup``, ``days_since_enrollment``;
- ``health.score`` and ``health.band``;
- ``usage.count``, ``usage.seen`` and ``usage.weeks_with`` with literal arguments, exactly the
  questions :mod:`orchestrator.usage.prefetch` answers for the whole batch;
- literals (numbers, strings, booleans, none, and tuples or lists of them, for ``in``), and
  ``-`` before a value (``-1`` is parsed as a negation).

Why this keeps the sandbox's guarantee: the sandbox exists so that a condition can read data
but never reach into Python (attributes, methods, globals). The translated function can do
strictly less than the sandboxed one: it reads five fixed columns of the customer's row
(:class:`CustomerValues`), its days since signup and its answers, and applies the listed
operators to them; it looks up no attribute the rule names, calls no function of the input,
and has no arithmetic (so no ``'x' * 10 ** 9``). Any other node (a filter, a test, an
attribute of ``customer`` or ``attributes``, a computed usage argument, a name it does not
list) makes the whole translation None, and the caller runs the sandboxed expression as
before. No text of the rule is in the function's source (:class:`_Source`): its literals and
questions are constants the function holds, so a rule cannot write code, only values. Step
conditions and templates, which authors write in the console and mail files, are never
translated: only the lifecycle rules use this.

A translated rule that raises (comparing ``None >= 70``, as Jinja would raise too) is not
judged here: the caller runs that customer through the sandbox, which raises the same error
and reports it the way it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol

from jinja2 import nodes

from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import compile_condition, parse_condition
from orchestrator.usage.prefetch import Key, node_questions, question_key


class CustomerValues(Protocol):
    """What a translated rule reads of the customer (with its days since signup, given
    apart): a row or tuple with these columns."""

    @property
    def tier(self) -> str: ...
    @property
    def plan(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def health_score(self) -> int | None: ...
    @property
    def health_band(self) -> str | None: ...


# A translated rule: f(the customer, its days since signup, its prefetched answers by key).
Answers = Mapping[Key, object]
PlainRule = Callable[[CustomerValues, int, Answers], Any]

_COMPARE = {
    "eq": "==",
    "ne": "!=",
    "gt": ">",
    "gteq": ">=",
    "lt": "<",
    "lteq": "<=",
    "in": "in",
    "notin": "not in",
}
_LITERAL = (bool, int, float, str, type(None))


class _Unsupported(Exception):
    """A node outside the translated set: the rule stays with the sandbox."""


@lru_cache(maxsize=256)
def plain_rule(source: str) -> PlainRule | None:
    """``source`` as a plain function, or None when it uses anything not listed above (or
    does not parse: the sandbox reports that)."""
    try:
        compile_condition(source)  # only what the sandbox runs
        tree = parse_condition(source)
        code = _Source()
        code.functions.append(f"def rule(r, d, a):\n    return {code.value(tree)}")
        return code.build("rule")
    except (ConditionError, _Unsupported, *_TOO_DEEP):
        return None


class _Source:
    """The Python source of one rule's functions, and the constants it names.

    Nothing the rule says becomes source text: every value taken from it (a literal, a usage
    question's key) is a constant ``_cN`` of the functions' namespace, and a customer value
    is read by an expression this module spells (``_READ``). So the source is made only of this
    class's identifiers and Python's operators, whatever the rule holds, and the functions it
    defines see no builtins but the few named in :meth:`build`."""

    def __init__(self) -> None:
        self.constants: dict[str, object] = {}
        self.functions: list[str] = []
        self._names = 0

    def fresh(self, prefix: str) -> str:
        """A name not used before in this source."""
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value: object) -> str:
        name = self.fresh("_c")
        self.constants[name] = value
        return name

    def value(self, node: nodes.Node) -> str:
        """``node``'s value as an expression of ``r`` (the customer), ``d`` (its days since
        signup) and ``a`` (its answers): the operators Jinja's compiled code applies."""
        if isinstance(node, nodes.Const) and isinstance(node.value, _LITERAL):
            return self.constant(node.value)
        if isinstance(node, nodes.Tuple | nodes.List):
            items = self.constant(tuple(_literal(item) for item in node.items))
            return f"list({items})" if isinstance(node, nodes.List) else items  # a fresh list
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in _READ:
            return _READ[node.name]
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "health"
            and f"health.{node.attr}" in _READ
        ):
            return _READ[f"health.{node.attr}"]
        if isinstance(node, nodes.Call):
            return self._usage_call(node)
        if isinstance(node, nodes.And | nodes.Or):  # a and b and c: (a and b) and c, flat
            joiner = " and " if isinstance(node, nodes.And) else " or "
            return f"({joiner.join(self.value(part) for part in _chain(node, type(node)))})"
        if isinstance(node, nodes.Not):
            return f"(not {self.value(node.node)})"
        if isinstance(node, nodes.Neg):
            return f"(-{self.value(node.node)})"
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            test, then = self.value(node.test), self.value(node.expr1)
            return f"({then} if {test} else {self.value(node.expr2)})"
        if isinstance(node, nodes.Compare):
            return self._compare(node)
        raise _Unsupported(type(node).__name__)

    def _compare(self, node: nodes.Compare) -> str:
        """``a < b <= c`` as Python chains it: each operand evaluated once, stop at the first
        false comparison (as Jinja compiles it)."""
        parts = [self.value(node.expr)]
        for operand in node.ops:
            if operand.op not in _COMPARE:
                raise _Unsupported(operand.op)
            parts += [_COMPARE[operand.op], self.value(operand.expr)]
        return f"({' '.join(parts)})"

    def _usage_call(self, node: nodes.Call) -> str:
        """A literal ``usage.count/seen/weeks_with`` question: its prefetched answer, as
        :class:`~orchestrator.usage.facts.UsageFacts` would give it."""
        key = question_key(node)
        if key is None:
            raise _Unsupported("usage call")
        assert isinstance(node.node, nodes.Getattr)
        answer = f"a[{self.constant(key)}]"
        return {"count": f"int({answer})", "seen": f"bool({answer})"}.get(node.node.attr, answer)

    def build(self, name: str) -> Callable[..., Any]:
        """The function ``name`` of the source, compiled; raises SyntaxError, RecursionError
        or MemoryError for a rule nested past what Python compiles."""
        namespace: dict[str, Any] = {
            "__builtins__": {},
            "int": int,
            "bool": bool,
            "list": list,
            "Exception": Exception,
            "U": UNDECIDED,
            **self.constants,
        }
        code = compile("\n".join(self.functions), "<lifecycle rule>", "exec")
        exec(code, namespace)  # noqa: S102 (no text of the rule is in the source: see above)
        function: Callable[..., Any] = namespace[name]
        return function


# How a customer value is read, by the name a rule gives it (all a rule may read of one).
_READ = {
    "tier": "r.tier",
    "plan": "r.plan",
    "stage": "r.stage",
    "days_since_signup": "d",
    "days_since_enrollment": "d",  # a lifecycle rule is about the customer, not an enrollment
    "health.score": "r.health_score",
    "health.band": "r.health_band",
}
_TOO_DEEP = (SyntaxError, RecursionError, MemoryError)  # nesting past what Python compiles


def _literal(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const) and isinstance(node.value, _LITERAL):
        return node.value
    raise _Unsupported(type(node).__name__)


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
DecidedRule = Callable[[CustomerValues, int, Answers], Any]  # True, False or UNDECIDED


@lru_cache(maxsize=256)
def decided_rule(source: str) -> DecidedRule | None:
    """``source``'s truth from the answers given (a missing key: not known), or None where
    :func:`plain_rule` is None."""
    try:
        compile_condition(source)  # only what the sandbox runs
        tree = parse_condition(source)
        code = _DecidedSource()
        code.value(tree)  # the same shapes only
        if isinstance(tree, nodes.And | nodes.Or):  # the usual rule: its chain inline
            body = code.chain_lines(tree)
        else:
            body = [f"return {code.truth(tree)}"]
        code.functions.append(
            "def decided(r, d, a):\n"
            "    try:\n"
            + "".join(f"        {line}\n" for line in body)
            + "    except Exception:\n"  # the plain rule raises too, or not: read all, then see
            "        return U"
        )
        return code.build("decided")
    except (ConditionError, _Unsupported, *_TOO_DEEP):
        return None


class _DecidedSource(_Source):
    """A rule's source with its truth in three values: True, False or ``U`` (UNDECIDED)."""

    def truth(self, node: nodes.Node) -> str:
        """An expression giving the truth of ``node``'s value from the answers in ``a``."""
        if isinstance(node, nodes.And | nodes.Or):
            return self._chain_function(node)
        if isinstance(node, nodes.Not):
            inner, held = self.truth(node.node), self.fresh("_held")
            return f"(U if ({held} := {inner}) is U else not {held})"
        value = self.value(node)
        keys = node_questions(node)
        if not keys:
            return f"bool({value})"
        if len(keys) == 1:
            (key,) = keys
            return f"(bool({value}) if {self.constant(key)} in a else U)"
        return f"(bool({value}) if {self.constant(keys)} <= a.keys() else U)"

    def _chain_function(self, node: nodes.And | nodes.Or) -> str:
        """A function of its own for a chain inside an expression (a rule that is a chain
        has it inline: :func:`decided_rule`), called where the chain stands."""
        name = self.fresh("_chain")
        body = "".join(f"\n    {line}" for line in self.chain_lines(node))
        self.functions.append(f"def {name}(r, d, a):{body}")
        return f"{name}(r, d, a)"

    def chain_lines(self, node: nodes.And | nodes.Or) -> list[str]:
        """The statements that return the truth of ``a and b and c`` (or ``or``): Python
        evaluates the parts in turn up to the first that settles the whole. An undecided part
        that cannot raise is passed over: whether it settles the whole or not, a later part
        known to settle it settles it the same way. ``passed`` and ``t`` are the caller's
        locals."""
        settles = isinstance(node, nodes.Or)  # the truth of a part that settles the whole
        lines = ["passed = False"]
        for part in _chain(node, type(node)):
            lines.append(f"t = {self.truth(part)}")
            lines.append(f"if t is {settles}: return {settles}")
            undecided = "passed = True" if _cannot_raise(part) else "return U"
            lines.append(f"if t is U: {undecided}")
        lines.append(f"return U if passed else {not settles}")
        return lines


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
