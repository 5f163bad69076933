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

Not bounded here: formatting widths (``'%0999999999d' % 1``, ``'{:>999999999}'.format(x)``,
the ``format`` filter) and time: loops nested inside loops (each ``range`` is the sandbox's, at
most 100,000 items, but two nested make 10^10 turns), a macro calling itself twice a level, or
a template of a million characters of markup, each run for minutes within these bounds. Mail
templates are reviewed in pull requests; this guards what a review may miss, not a hostile
author with a budget of CPU.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

Joined = TypeVar("Joined", bound=str)  # Markup stays Markup

MAX_ITEMS = 1_000_000  # characters of a repeated or joined text, items of a list
MAX_POWER_BITS = 100_000  # ~30,000 decimal digits
MAX_LIPSUM_PARAGRAPHS = 100  # and as many words a paragraph at most ten times that


class _BoundedJoins(CodeGenerator):
    """Compiles ``a ~ b`` to a join the environment checks (Jinja writes it as a plain
    ``str_join``, which no operator hook sees)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedOperators(SandboxedEnvironment):
    """A sandbox whose ``*``, ``+``, ``~``, ``**`` and ``lipsum`` refuse results past the
    bounds above (mix it in before the sandbox class it extends)."""

    intercepted_binops = frozenset({"*", "**", "+"})
    code_generator_class = _BoundedJoins

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["lipsum"] = _bounded_lipsum
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _checked_filter(self.filters[name], check)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from a template; a text's method that grows it (``center``, ``replace``,
        ``join``, ``expandtabs``…) checked first. (The double underscores are the sandbox's:
        a template's keyword cannot clash.)"""
        text = getattr(__obj, "__self__", None)
        if isinstance(text, str):
            _check_text_method(text, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repetition(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            _check_join(len(left) + len(right) if _sized(left, right) else 0)
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def bounded_join(joined: Joined) -> Joined:
        """The text ``~`` joined, if it is within the bound (checked once made: the parts
        were each within it, so the join is at most their sum)."""
        _check_join(len(joined))
        return joined


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


# Jinja's filters that grow a text past its parts, each with the check of its arguments.
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "replace": _check_replace_filter,
    "join": _check_join_filter,
}


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
