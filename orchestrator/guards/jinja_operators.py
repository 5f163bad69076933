"""Repetition and powers in templates and conditions, bounded.

Jinja's sandbox keeps a template out of Python's internals, not out of memory or CPU: its
own documentation names ``{{ 'x' * 10 ** 9 }}`` (a gigabyte a render, in the worker sending
every mail) and suggests intercepting the operators. :class:`BoundedOperators` does, for the
two that grow a value beyond any page: ``*`` of a text or list by a number, past
``MAX_ITEMS`` characters or items, and ``**`` of whole numbers past ``MAX_POWER_BITS``
(``9 ** 9 ** 9`` would compute for minutes). Each raises the sandbox's ``SecurityError``,
which renders as a template error at its line and fails a condition like any other error.

Not bounded here: formatting widths (``'%0999999999d' % 1``, ``'{:>999999999}'.format(x)``)
and string methods that grow text (``center``, ``replace``); mail templates are reviewed in
pull requests, and this guards the slips a review may miss, not a hostile author.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_ITEMS = 1_000_000  # characters of a repeated text, items of a repeated list
MAX_POWER_BITS = 100_000  # ~30,000 decimal digits


class BoundedOperators(SandboxedEnvironment):
    """A sandbox whose ``*`` and ``**`` refuse results past the bounds above (mix it in
    before the sandbox class it extends)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repetition(left, right)
        elif operator == "**":
            _check_power(left, right)
        return super().call_binop(context, operator, left, right)


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
