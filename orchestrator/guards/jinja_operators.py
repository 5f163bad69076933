"""Repetition, joining and powers in templates and conditions, bounded.

Jinja's sandbox keeps a template out of Python's internals, not out of memory or CPU: its
own documentation names ``{{ 'x' * 10 ** 9 }}`` (a gigabyte a render, in the worker sending
every mail) and suggests intercepting the operators. :class:`BoundedOperators` does, for the
ones that grow a value beyond any page: ``*`` of a text or list by a number and ``+`` or ``~``
of texts or lists, past ``MAX_ITEMS`` characters or items (a loop doubling a text with
``{% set s = s ~ s %}`` reaches gigabytes in thirty turns), ``**`` of whole numbers past
``MAX_POWER_BITS`` (``9 ** 9 ** 9`` would compute for minutes), and ``lipsum`` past
``MAX_LIPSUM_PARAGRAPHS``. Each raises the sandbox's ``SecurityError``, which renders as a
template error at its line and fails a condition like any other error.

Not bounded here: formatting widths (``'%0999999999d' % 1``, ``'{:>999999999}'.format(x)``),
string methods that grow text (``center``, ``replace``) and loops nested inside loops (each
``range`` is the sandbox's, at most 100,000 items, but two nested make 10^10 turns); mail
templates are reviewed in pull requests, and this guards the slips a review may miss, not a
hostile author.
"""

from __future__ import annotations

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
        raise SecurityError(f"joining makes {made:,} characters or items; at most {MAX_ITEMS:,}")


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
