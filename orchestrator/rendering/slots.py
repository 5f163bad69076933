"""Where each value went in a rendered mail: marks around every ``{{ … }}`` Jinja writes.

Most mails of a batch share their HTML but for a few values (a name, a company, the signed
links). A mail rendered while :func:`marking` is on carries a pair of marks
around each value, so the text part can be made once per *layout* (the HTML with the values
cut out) and filled with each mail's values (:mod:`orchestrator.rendering.text_part`).

The marks must never change what the mail says. A render is marked only through templates
whose compiled code says they pass their values on untouched (:func:`passes_values_on`): no
``{% filter %}`` or ``{% set %}`` block, no autoescape switch, no macro output used as
anything but output. Cutting the HTML at the marks (:func:`cut`) then gives back the HTML of
an unmarked render, unless a mark stood where this render did not write one (a value, a
``|safe`` string or the template itself carrying a mark's character): such a mail, and every
mail through a template that fails the check, is drawn again without marks. Slower, never
different.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import markupsafe
from jinja2 import nodes, pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

from orchestrator.guards.jinja_steps import PREPAID_CHARS, charge_text

# Control characters (shift out, shift in): no mail has a use for them, and unlike any
# character above U+00FF they keep an English mail's HTML a one-byte-a-character string.
OPEN, CLOSE = "\x0e", "\x0f"
# The name the compiled code of a template binds to the verdict of passes_values_on.
VERDICT = "stepmail_passes_values_on"
# Filters the stylesheet extension wraps link attributes in: they read their value unmarked.
_LINK_FILTERS = frozenset({"track_link", "safe_link", "guarded_track_link"})


class Marks:
    """One render's marks: how many it wrote, and whether its templates pass values on."""

    __slots__ = ("foreign", "templates_pass", "written")

    def __init__(self) -> None:
        self.written = 0
        self.templates_pass = True
        self.foreign = False  # a link carried a mark's character of its own


_MARKS: ContextVar[Marks | None] = ContextVar("stepmail_marks", default=None)


class _Marking:
    """``with marking() as marks``: a class, not a ``@contextmanager`` generator, which took
    ~1.2 µs more each mail (bench/README, "Session 26")."""

    __slots__ = ("_reset",)

    def __enter__(self) -> Marks:
        marks = Marks()
        self._reset = _MARKS.set(marks)
        return marks

    def __exit__(self, *exc_info: object) -> None:
        _MARKS.reset(self._reset)


def marking() -> _Marking:
    """Within this block, the mail environment marks the values it writes."""
    return _Marking()


def cut(marked: str, marks: Marks) -> list[str] | None:
    """``marked`` cut at its values: fixed HTML and values alternating, the marks gone (so
    ``"".join`` of it is the unmarked HTML); None when it cannot be trusted to be, that is
    unless the render's own marks, and no others, stand in order (open, close, open, ...)."""
    if not marks.templates_pass or marks.foreign:
        return None
    parts = marked.split(OPEN)
    # One open mark a value written; none closed before the first. (Asking each piece
    # ``CLOSE in`` reads it by memchr; counting the close marks over the whole HTML took
    # a third of this function's instructions: bench/README, "Session 27".)
    if len(parts) != marks.written + 1 or CLOSE in parts[0]:
        return None
    pieces = [parts[0]]
    for part in parts[1:]:
        value, close, rest = part.partition(CLOSE)
        if not close or CLOSE in rest:
            return None  # a value not closed, or closed twice: a mark the render did not write
        pieces += (value, rest)
    return pieces


def note_template(template: Any) -> None:
    """A template this render uses (the environment calls this for each one it loads)."""
    marks = _MARKS.get()
    if marks is not None and not template_passes_values_on(template):
        marks.templates_pass = False


def template_passes_values_on(template: Any) -> bool:
    """The verdict of :func:`passes_values_on`, which compiling put into the code."""
    return bool(template.root_render_func.__globals__.get(VERDICT, False))


@pass_eval_context
def finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """The environment's ``finalize``: :func:`written_text`. Jinja calls it only where the
    output code is its own (inside ``{% autoescape %}``): the mail environment's code writes
    :func:`written_text` or :func:`written_html` itself (``rendering/output_code``).

    It takes the eval context so that Jinja never calls it at compile time on a constant,
    which would bake marks into the code."""
    return written_text(value)


def written_text(value: Any) -> Any:
    """What a ``{{ … }}`` writes unescaped (a text template's): the value between marks while
    :func:`marking` is on; a markup value as it is. Its length is charged on the render's
    step budget (:mod:`orchestrator.guards.jinja_steps`)."""
    marks = _MARKS.get()
    if type(value) is not str:
        if hasattr(value, "__html__"):
            # Markup: a macro's output, marked inside, or |safe: the layout's. What made it
            # was charged (the macro's steps, the safe filter's walk).
            return value
        value = str(value)  # what escaping or the text template would make of it
    size = len(value)
    if size > PREPAID_CHARS:  # shorter: prepaid in the steps of the template's code
        charge_text(size)
    if marks is None or not size:
        return value
    marks.written += 1
    return OPEN + value + CLOSE


def written_html(value: Any) -> str:
    """What an autoescaped ``{{ … }}`` writes: :func:`written_text`, then escaped as
    markupsafe's ``escape`` would (a markup value's own HTML), in one Python call instead of
    two (a mail writes ~25 values; a call costs ~1,400 instructions: bench/README, "Session
    40"). The marks are control characters, which escaping leaves as they are, so escaping
    the marked value or marking the escaped one is the same text.

    What escaping returns is only ever joined into the output (a macro's or block's output is
    made ``Markup`` again as a whole), so it is a plain ``str``: markupsafe's ``Markup``
    wrapper costs a Python-level ``__new__`` (bench/README, "Session 21")."""
    if type(value) is not str:
        html = getattr(value, "__html__", None)
        if html is not None:
            markup = html()
            return markup if isinstance(markup, str) else str(markup)
        value = str(value)
    size = len(value)
    if size > PREPAID_CHARS:  # the copy of written_text's charge, inline
        charge_text(size)
    marks = _MARKS.get()
    if marks is None or not size:
        return escape_text(value)
    marks.written += 1
    return OPEN + escape_text(value) + CLOSE


def _public_escape(text: str) -> str:
    return str(escape(text))


# markupsafe 3 escapes a plain string in C before it wraps it in Markup; an older one offers
# only the wrapped form (the same text)
escape_text: Callable[[str], str] = getattr(markupsafe, "_escape_inner", _public_escape)


# ``Markup(text)`` for a ``text`` that is a str: markupsafe's ``Markup.__new__`` is Python
# (it asks ``text`` for ``__html__`` first), this is one C call, about half the cost; a mail
# makes ~10 (bench/README, "Session 40"). Only for text already escaped, as ``Markup`` is.
as_markup: Callable[[str], Markup] = functools.partial(str.__new__, Markup)


def link_filter_reading_unmarked(link_filter: Callable[[Any], Markup]) -> Callable[[Any], Markup]:
    """``track_link`` or ``safe_link`` as a mail filter: the link it reads has its values'
    marks taken off (a mark inside a link would change the link signed or checked), and the
    link it returns is marked as one value."""

    def filtered(value: Any) -> Markup:
        marks = _MARKS.get()
        if marks is None:
            return link_filter(value)
        text = str(value)
        opened = text.count(OPEN)
        if opened:
            marks.written -= opened
            marks.foreign |= text.count(CLOSE) != opened
            text = text.replace(OPEN, "").replace(CLOSE, "")
            value = as_markup(text) if isinstance(value, Markup) else text  # (was Markup)
        link = link_filter(value)
        if not link:
            return link
        marks.written += 1
        return as_markup(OPEN + str(link) + CLOSE)  # the filter's escaped link

    return filtered


def passes_values_on(template: nodes.Template) -> bool:
    """True when every value this template writes reaches the output as written: then a
    marked render is, marks removed, the unmarked one."""
    modules = {"self"}  # names that hold macros: ``m`` of ``{% import … as m %}``
    macros = {"caller", "super"}  # names that are macros
    for node in template.find_all((nodes.Import, nodes.FromImport, nodes.Macro)):
        if isinstance(node, nodes.Import):
            modules.add(node.target)
        elif isinstance(node, nodes.FromImport):
            macros.update(name if isinstance(name, str) else name[1] for name in node.names)
        elif isinstance(node, nodes.Macro):
            macros.add(node.name)
    return _passes(template, (), modules, macros)


def _passes(
    node: nodes.Node, ancestors: tuple[nodes.Node, ...], modules: set[str], macros: set[str]
) -> bool:
    if isinstance(node, (nodes.AssignBlock, nodes.EvalContextModifier)):
        return False
    if isinstance(node, nodes.FilterBlock) and not _only_link_filters(node.filter):
        return False
    if isinstance(node, (nodes.Macro, nodes.CallBlock)):  # its parameters hide outer names
        parameters = {argument.name for argument in node.args}
        modules, macros = modules - parameters, macros - parameters
    if isinstance(node, nodes.Name) and node.ctx != "param":
        if node.name in modules and not _output_call(ancestors, node, via_attribute=True):
            return False
        if node.name in macros and not _output_call(ancestors, node, via_attribute=False):
            return False
    below = (*ancestors[-2:], node)
    return all(_passes(child, below, modules, macros) for child in node.iter_child_nodes())


def _output_call(
    ancestors: tuple[nodes.Node, ...], name: nodes.Name, *, via_attribute: bool
) -> bool:
    """``name()`` or ``name.macro()`` written straight out, or the macro a ``{% call %}`` calls:
    the only uses of a macro whose (marked) output nothing else reads."""
    callee: nodes.Node = name
    if via_attribute:
        attribute = ancestors[-1] if ancestors else None
        if not isinstance(attribute, nodes.Getattr) or attribute.node is not name:
            return False
        callee, ancestors = attribute, ancestors[:-1]
    if len(ancestors) < 2:
        return False
    writer, call = ancestors[-2], ancestors[-1]
    if not isinstance(call, nodes.Call) or call.node is not callee:
        return False
    if isinstance(writer, nodes.Output):
        return any(child is call for child in writer.nodes)
    return isinstance(writer, nodes.CallBlock) and writer.call is call


def _only_link_filters(node: nodes.Filter | None) -> bool:
    """``{% filter track_link %}`` and kin, which the stylesheet extension writes around link
    attributes: they take the marks off before reading the link (see ``track_link``)."""
    while node is not None:
        if node.name not in _LINK_FILTERS:
            return False
        node = node.node if isinstance(node.node, nodes.Filter) else None
    return True
