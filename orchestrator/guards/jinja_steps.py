"""A render's work, counted: CPU time in templates bounded by a budget of steps, not seconds.

The growth bounds (:mod:`orchestrator.guards.jinja_operators`) keep each value within a
million items, but not the time a template takes: two nested loops over ``range(10000)``
make 10^8 turns (27 s a render), a macro that calls itself twice a level makes 2^40 calls.
So every render draws on a budget of ``MAX_STEPS`` steps. What runs repeatedly is charged
by what its code may do, judged once when the template is compiled (:func:`steps_of`: a step
a node, a step for ``CHARS_PER_STEP`` characters of its markup, a value it writes prepaid for
``PREPAID_CHARS``):

- a loop, its body's steps a turn: a sized iterable's turns all before the first (so nested
  loops stop at once), anything else a turn at a time; a recursive loop's at every depth;
- a macro call (``caller()`` too), its body's steps; any other call from the template, one;
- a template a render loads (its layout, an include, an import), its whole code's steps;
- what walks a value in Python, past ``PREPAID_CHARS``: a filter's input (``sort``, ``map``,
  ``join``, ``wordwrap``…), a text method's text, a slice or ``in`` in a loop or macro, a text
  ``~``, ``+`` or ``*`` made, one step an item or ``CHARS_PER_STEP`` characters;
- a value written (``{{ … }}``) longer than ``PREPAID_CHARS``, its length.

The count is deterministic: a template that passes ``stepmail check`` takes as many steps in
a worker, however slow the host. The budget is the render's, not a Jinja context's (Jinja
makes a new context for each include): a context variable, :data:`BUDGET`, that the includes,
imports, macros and blocks of the render all draw on. The renderer opens one a mail (subject,
HTML, text part); ``Template.render`` opens one when none is open (the templates' own
``BudgetedTemplate``); conditions open one an evaluation. Template code that runs with no
budget open (a root render function called by hand) is refused: no unbounded way round.

The shipped templates (``templates/mail/``) take at most 2,839 steps a mail, 1,911 on average
(every step, tier, language and variant ``stepmail check`` renders): under 0.3% of
``MAX_STEPS`` (``tests/content/test_shipped_check.py`` checks them with a hundredth of it).
A render that spends the whole budget takes under a second on the 2-core development host
(the nested loops 0.1 s, the macro 0.4 s, a recursive loop 0.2 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError

MAX_STEPS = 1_000_000
CHARS_PER_STEP = 10  # characters of a text written or walked that count as one step
PREPAID_CHARS = 100  # a value written is charged by its length only past these
# The name compiled code gives the steps of a template (a module global) or of a macro (an
# attribute of its function).
STEPS_ATTRIBUTE = "stepmail_steps"
OUTSIDE = "template code run outside a render's step budget"


# The steps the render in hand has left, as a one-item list: opening a budget and charging it
# are then a few bytecodes, no Python call (the send path opens one a mail, and a Python
# call costs ~1,400 instructions, 0.2% of a mail: bench/README).
BUDGET: ContextVar[list[int] | None] = ContextVar("stepmail_step_budget", default=None)


class _Budgeted:
    """``with step_budget():``, for the ways in that are not the send path's."""

    __slots__ = ("_reset",)

    def __enter__(self) -> None:
        self._reset = BUDGET.set([MAX_STEPS])

    def __exit__(self, *exc_info: object) -> None:
        BUDGET.reset(self._reset)


def step_budget() -> _Budgeted:
    """Within this block, templates draw on a fresh budget of ``MAX_STEPS``."""
    return _Budgeted()


def budget_open() -> bool:
    return BUDGET.get() is not None


def charge(steps: int) -> None:
    """Take ``steps`` from the render's budget; SecurityError once it is spent (or if no
    budget is open)."""
    budget = BUDGET.get()
    if budget is None:
        raise SecurityError(OUTSIDE)
    budget[0] -= steps
    if budget[0] < 0:
        raise SecurityError(exhausted())


def exhausted() -> str:
    return (
        f"the template takes more than {MAX_STEPS:,} steps (loop turns, calls, items "
        "walked): too much work for one mail"
    )


def charge_text(length: int) -> None:
    """Charge a text of ``length`` characters written or walked (the step of a text shorter
    than ``CHARS_PER_STEP`` is rounded away: a mail writes many short values)."""
    if length >= CHARS_PER_STEP:
        charge(length // CHARS_PER_STEP)


def charge_walk(value: Any) -> Any:
    """``value`` about to be walked in Python: a text charged by its characters, a sized
    collection by its items, an iterator wrapped to charge each item as it is taken; a text
    or collection of at most ``PREPAID_CHARS`` is prepaid (the step of the node that walks
    it). Returns what to walk instead of ``value``."""
    try:
        size = len(value)
    except TypeError:
        return _charged_turns(value) if isinstance(value, Iterator) else value
    if size > PREPAID_CHARS:
        charge(size // CHARS_PER_STEP if isinstance(value, str) else size)
    return value


def counted(iterable: Iterable[Any], turn: int = 1) -> Iterable[Any]:
    """What a ``{% for %}`` loops over, ``turn`` steps charged a turn: all at once for a
    sized iterable (a loop without ``break`` always runs them all), else one by one."""
    try:
        size = len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return _charged_turns(iterable, turn)
    budget = BUDGET.get()
    if budget is None:
        raise SecurityError(OUTSIDE)
    budget[0] -= size * turn
    if budget[0] < 0:
        raise SecurityError(exhausted())
    return iterable


def steps_of(trees: Iterable[nodes.Node]) -> int:
    """The steps running ``trees`` once takes, judged from the template when it is compiled:
    one a node, one for ``CHARS_PER_STEP`` characters of its text, and a value written
    (``{{ … }}``) prepaid for ``PREPAID_CHARS`` (a longer one is charged as it is written)."""
    steps = 1
    for tree in trees:
        for node in (tree, *tree.find_all(nodes.Node)):
            steps += 1
            if isinstance(node, nodes.TemplateData):
                steps += len(node.data) // CHARS_PER_STEP
            elif isinstance(node, nodes.Output):
                written = sum(not isinstance(child, nodes.TemplateData) for child in node.nodes)
                steps += written * (PREPAID_CHARS // CHARS_PER_STEP)
    return steps


def charge_load(template: Any) -> None:
    """A template a render loads (itself, its layout, an include, an import) charged the
    steps of its whole code; nothing when no render is under way (a worker compiling its
    templates as it boots)."""
    budget = BUDGET.get()
    if budget is not None:
        budget[0] -= template.root_render_func.__globals__.get(STEPS_ATTRIBUTE, 1)
        if budget[0] < 0:
            raise SecurityError(exhausted())


def _charged_turns(iterable: Iterable[Any], turn: int = 1) -> Iterator[Any]:
    for item in iterable:
        charge(turn)
        yield item
