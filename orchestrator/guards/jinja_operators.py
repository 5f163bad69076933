"""Repetition, joining, padding and powers in templates and conditions, bounded.

Jinja's sandbox keeps a template out of Python's internals, not out of memory or CPU: its
own documentation names ``{{ 'x' * 10 ** 9 }}`` (a gigabyte a render, in the worker sending
every mail) and suggests intercepting the operators. :class:`BoundedOperators` does, for the
ones that grow a value beyond any page: ``*`` of a text or list by a number and ``+`` or ``~``
of texts or lists, past ``MAX_ITEMS`` characters or items (a loop doubling a text with
``{% set s = s ~ s %}`` reaches gigabytes in thirty turns); a text's ``center``, ``ljust``,
``rjust``, ``zfill``, ``expandtabs``, ``replace`` and ``join`` and the filters ``center``,
``indent``, ``replace`` and ``join``, judged from their arguments before they run; ``**`` of
whole numbers past ``MAX_POWER_BITS`` (``9 ** 9 ** 9`` would compute for minutes); and
``lipsum`` past ``MAX_LIPSUM_PARAGRAPHS``. Each raises the sandbox's ``SecurityError``, which
renders as a template error at its line and fails a condition like any other error.

A text's ``%`` and ``format``/``format_map`` methods and the ``format`` filter refuse a width
or precision past ``MAX_ITEMS`` (``'%0999999999d' % 1``, ``'{:>999999999}'.format(x)`` made
a gigabyte), judged before they run.

Time is bounded by the render's step budget (:mod:`orchestrator.guards.jinja_steps`), which
the code generator and hooks here charge: loops, calls, loads, walks over large values.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TypeVar

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, operators
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context, Macro
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from orchestrator.guards.jinja_steps import (
    BUDGET,
    OUTSIDE,
    PREPAID_CHARS,
    STEPS_ATTRIBUTE,
    budget_open,
    charge_load,
    charge_text,
    charge_walk,
    counted,
    exhausted,
    step_budget,
    steps_of,
)

Joined = TypeVar("Joined", bound=str)  # Markup stays Markup

MAX_ITEMS = 1_000_000  # characters of a repeated or joined text, items of a list
MAX_POWER_BITS = 100_000  # ~30,000 decimal digits
MAX_LIPSUM_PARAGRAPHS = 100  # and as many words a paragraph at most ten times that


class BoundedCode(CodeGenerator):
    """Compiles ``a ~ b`` to a join the environment checks (Jinja writes it as a plain
    ``str_join``, which no operator hook sees), and the work no hook sees to a charge on the
    render's step budget (:mod:`orchestrator.guards.jinja_steps`): a loop's turns, an include
    or import, the right side of ``in``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join(")
        super().visit_Concat(node, frame)
        self.write(")")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        turn = steps_of([*node.body, *node.else_, *([node.test] if node.test else [])])
        self._repeating += 1
        try:
            if not node.recursive:
                self._loop_iterables[id(node.iter)] = turn
                super().visit_For(node, frame)
                return
            # A recursive loop's turns, at every depth (``loop(children)``), are those of the
            # ``reciter`` its function loops over.
            outer, self._recursive_turn = self._recursive_turn, turn
            try:
                super().visit_For(node, frame)
            finally:
                self._recursive_turn = outer
        finally:
            self._repeating -= 1

    _recursive_turn: int | None = None
    # Inside a loop or macro (code that may run many times a render): only there is a walk
    # the template writes charged. Elsewhere it runs once a load, bounded by the template's
    # size; that keeps the send path's ``in`` at the layout's top level free.
    _repeating = 0

    def write(self, x: str) -> None:
        if x == "reciter" and self._recursive_turn is not None:
            x = f"environment.counted(reciter, {self._recursive_turn})"
        super().write(x)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        """Every node as Jinja writes it; what a ``{% for %}`` loops over inside
        ``environment.counted(…, steps a turn)``. (Jinja refuses new node types, so the
        loop's iterable is known by its identity.)"""
        turn = self._loop_iterables.get(id(node))
        if turn is None:
            return super().visit(node, *args, **kwargs)
        self.write("environment.counted(")
        super().visit(node, *args, **kwargs)
        self.write(f", {turn})")
        return None

    @functools.cached_property
    def _loop_iterables(self) -> dict[int, int]:
        return {}

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        if node.op not in ("in", "notin") or not self._repeating:
            super().visit_Operand(node, frame)
            return
        self.write(f" {operators[node.op]} environment.walked(")
        self.visit(node.expr, frame)
        self.write(")")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice) or not self._repeating:
            super().visit_Getitem(node, frame)
            return
        self.write("environment.walked(")  # Jinja slices without a hook: a copy, charged
        super().visit_Getitem(node, frame)
        self.write(")")

    def macro_body(self, node: nodes.Macro | nodes.CallBlock, frame: Frame) -> Any:
        """The macro's function, with the steps its body takes a call written onto it."""
        self._repeating += 1
        try:
            made = super().macro_body(node, frame)
        finally:
            self._repeating -= 1
        self.writeline(f"macro.{STEPS_ATTRIBUTE} = {steps_of(node.body)}")
        return made


class BudgetedTemplate(Template):
    """A template whose ``render`` draws on a step budget of its own when it is called
    outside one (Jinja's public way in; the renderer opens the budget of a mail itself)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if budget_open():
            return super().render(*args, **kwargs)
        with step_budget():
            return super().render(*args, **kwargs)


class BoundedOperators(SandboxedEnvironment):
    """A sandbox whose ``*``, ``+``, ``~``, ``%``, ``**``, formatting and ``lipsum`` refuse
    results past the bounds above, and whose loops, calls, includes, imports and walks over
    large values draw on the render's step budget (mix it in before the sandbox class it
    extends)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = BoundedCode
    template_class = BudgetedTemplate

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["lipsum"] = _bounded_lipsum
        for name in (self.filters.keys() & FILTERS.keys()) - _FILTERS_NOT_WALKING:
            self.filters[name] = _walking_filter(self.filters[name])
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _checked_filter(self.filters[name], check)
        self.tests["in"] = _walking_in_test

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from a template: a step, or a macro's steps (its body's, written onto its
        function when compiled); a text's method that grows it (``center``, ``replace``,
        ``join``…) checked first, and the text or list it walks charged. (The double
        underscores are the sandbox's: a template's keyword cannot clash.)"""
        budget = BUDGET.get()
        if budget is None:
            raise SecurityError(OUTSIDE)
        budget[0] -= __obj._func.stepmail_steps if type(__obj) is Macro else 1  # type: ignore[attr-defined]
        if budget[0] < 0:
            raise SecurityError(exhausted())
        receiver = getattr(__obj, "__self__", None)
        if isinstance(receiver, str):
            _check_text_method(receiver, getattr(__obj, "__name__", ""), args, kwargs)
            charge_walk(receiver)
        elif isinstance(receiver, list | tuple):
            charge_walk(receiver)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """A text's ``format`` or ``format_map`` as the sandbox wraps it (at access, so its
        call reaches no hook), its widths checked and its text charged first."""
        formats = super().wrap_str_format(value)
        if formats is None:
            return None
        text: str = value.__self__

        @functools.wraps(formats)
        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if value.__name__ == "format_map" and args else None
            values = tuple(mapping.values()) if isinstance(mapping, Mapping) else args
            check_brace_format(text, (*values, *kwargs.values()))
            charge_walk(text)
            return formats(*args, **kwargs)

        return checked

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repetition(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            _check_join(len(left) + len(right) if _sized(left, right) else 0)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        made = super().call_binop(context, operator, left, right)
        if isinstance(made, str | list | tuple) and len(made) > PREPAID_CHARS:
            charge_walk(made)  # what it made
        return made

    @staticmethod
    def bounded_join(joined: Joined) -> Joined:
        """The text ``~`` joined, if it is within the bound (checked once made: the parts
        were each within it, so the join is at most their sum)."""
        _check_join(len(joined))
        if len(joined) > PREPAID_CHARS:  # what it made (a written text is charged again)
            charge_text(len(joined))
        return joined

    @staticmethod
    def counted(iterable: Any, turn: int = 1) -> Any:
        return counted(iterable, turn)

    walked = staticmethod(charge_walk)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        """The compiled code, with the steps the whole template takes written into it: each
        time a render loads it (itself, its layout, an include, an import) they are charged."""
        code = super()._generate(source, name, filename, defer_init)
        return f"{code}\n{STEPS_ATTRIBUTE} = {steps_of([source])}\n"

    def _load_template(self, name: str, globals: MutableMapping[str, Any] | None) -> Template:
        template = super()._load_template(name, globals)
        charge_load(template)
        return template


def _sized(left: Any, right: Any) -> bool:
    return isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)


def _check_join(made: int) -> None:
    if made > MAX_ITEMS:
        raise SecurityError(f"that makes {made:,} characters or items; at most {MAX_ITEMS:,}")


def _check_text_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call of ``text.<name>(…)`` whose result would pass ``MAX_ITEMS``, judged
    from its arguments before it is made."""
    first = args[0] if args else next(iter(kwargs.values()), None)
    if name in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        _check_join(first)
    elif name == "expandtabs":
        size = first if isinstance(first, int) else 8
        _check_join(len(text) + text.count("\t") * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _check_replace(text, args[0], args[1], count)
    elif name == "join" and isinstance(first, list | tuple):
        _check_join(len(text) * max(len(first) - 1, 0))


# A printf-style conversion: its mapping key, flags, width and precision (``*`` takes them
# from the arguments, in order).
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
# A number in a ``{…:spec}`` format spec: its width or precision (a fill character is one).
_SPEC_NUMBER = re.compile(r"\d+")


def check_percent_format(text: str, values: Any) -> None:
    """Refuse ``text % values`` whose width or precision passes ``MAX_ITEMS``
    (``'%0999999999d' % 1`` would make a gigabyte), judged before it is made."""
    arguments = list(values) if isinstance(values, tuple) else [values]
    for conversion in _PERCENT.finditer(text):
        width, precision, kind = conversion.groups()
        if kind == "%":
            continue
        for number in (width, precision):
            if number == "*":
                _check_width(arguments.pop(0) if arguments else 0)
            elif number:
                _check_width(int(number))
        if arguments:
            arguments.pop(0)


def check_brace_format(text: str, values: tuple[Any, ...]) -> None:
    """Refuse ``text.format(…)`` whose widths or precisions pass ``MAX_ITEMS``
    (``'{:>999999999}'.format(x)``), judged before it is made; a spec that takes its width
    from the arguments (``{:{}}``) is judged by their whole numbers."""
    for _, _, spec, _ in _FORMATTER.parse(text):
        if not spec:
            continue
        if "{" in spec:
            for value in values:
                if isinstance(value, int):
                    _check_width(value)
        for number in _SPEC_NUMBER.findall(spec):
            _check_width(int(number))


_FORMATTER = string.Formatter()


def _check_width(width: Any) -> None:
    if isinstance(width, int) and abs(width) > MAX_ITEMS:
        raise SecurityError(f"a width or precision of {width:,}; at most {MAX_ITEMS:,}")


def _check_replace(text: str, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _check_join(len(text) + found * (len(new) - len(old)))


def _check_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    if isinstance(width, int):
        _check_join(width)


def _check_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(value)
    each = width if isinstance(width, int) else len(width) if isinstance(width, str) else 0
    _check_join(len(text) + (text.count("\n") + 1) * each)


def _check_replace_filter(
    _eval_ctx: Any, value: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any
) -> None:
    _check_replace(str(value), old, new, -1 if count is None else count)


def _check_join_filter(_eval_ctx: Any, value: Any, separator: Any = "", *_: Any, **__: Any) -> None:
    if isinstance(separator, str) and isinstance(value, list | tuple):
        _check_join(len(separator) * max(len(value) - 1, 0))


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent_format(str(value), kwargs or args)


# Jinja's filters that grow a text past its parts, each with the check of its arguments.
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "replace": _check_replace_filter,
    "join": _check_join_filter,
    "format": _check_format_filter,
}

# Filters that read no more than a few items of their input, or are the mail's own: the rest
# walk it in Python, and are charged for it on the render's step budget. (``e`` and ``trim``,
# which the shipped templates use, walk a text: a mail's are short, and charged as written.)
_FILTERS_NOT_WALKING = frozenset(
    {"abs", "attr", "count", "d", "default", "first", "float", "int", "length", "random"}
    | {"round", "filesizeformat"}
)


def _walking_filter(jinja_filter: Callable[..., Any]) -> Any:
    """``jinja_filter`` with its input charged on the step budget (an iterator: each item as
    the filter takes it); Jinja's markers carried over, so it is called as before."""
    value_at = 1 if getattr(jinja_filter, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(jinja_filter)
    def walking(*args: Any, **kwargs: Any) -> Any:
        if len(args) > value_at:
            walked = charge_walk(args[value_at])
            if walked is not args[value_at]:
                args = (*args[:value_at], walked, *args[value_at + 1 :])
        return jinja_filter(*args, **kwargs)

    return walking


def _walking_in_test(value: Any, seq: Any) -> bool:
    """Jinja's ``in`` test (``x is in y``), ``y`` charged as the ``in`` operator's is."""
    return value in charge_walk(seq)


def _checked_filter(jinja_filter: Callable[..., Any], check: Callable[..., None]) -> Any:
    """``jinja_filter`` with ``check`` of its arguments first; Jinja's own markers (does it
    take the eval context, the environment) carried over, so it is called as before."""

    @functools.wraps(jinja_filter)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return jinja_filter(*args, **kwargs)

    return checked


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's ``lipsum``, refusing more paragraphs or longer ones than a preview needs."""
    if n > MAX_LIPSUM_PARAGRAPHS or max > 10 * MAX_LIPSUM_PARAGRAPHS:
        raise SecurityError(
            f"lipsum({n}, max={max}): at most {MAX_LIPSUM_PARAGRAPHS} paragraphs of "
            f"{10 * MAX_LIPSUM_PARAGRAPHS} words"
        )
    return generate_lorem_ipsum(n, html, min, max)


def _check_repetition(left: Any, right: Any) -> None:
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sequence, str | list | tuple) and isinstance(times, int):
        made = len(sequence) * times
        if made > MAX_ITEMS:
            raise SecurityError(
                f"repeating {len(sequence):,} items {times:,} times makes {made:,}; "
                f"at most {MAX_ITEMS:,}"
            )


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        bits = max(base.bit_length(), 1) * exponent
        if abs(base) > 1 and bits > MAX_POWER_BITS:
            raise SecurityError(
                f"{base} ** {exponent} has about {bits:,} bits; at most {MAX_POWER_BITS:,}"
            )
