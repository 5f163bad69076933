"""Where each value went in a rendered mail: marks around every ``{{ … }}`` Jinja writes.

Most mails of a batch share their HTML but for a few values (a name, a company, the signed
links). A mail rendered while :func:`marking` is on carries a pair of private-use marks
around each such value, so the text part can be made once per *layout* (the HTML with the
values cut out) and filled with each mail's values (:mod:`orchestrator.rendering.text_part`).

The marks must never change what the mail says. So a value is marked only when the text
converter treats it as an opaque word: printable, not empty, no space at either end, no two
in a row. Any other value is written as it is and the mail's layout is not reused
(``varied``). And a render is marked only through templates whose compiled code says they
pass the value on untouched (:func:`passes_values_on`): no ``{% filter %}`` or ``{% set %}``
block, no autoescape switch, no macro result used as anything but output. A template that
fails that, or a mark found where this render did not put one, makes the renderer draw the
mail again without marks: slower, never different.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

OPEN, CLOSE = "\ue00e", "\ue00f"
# The name the compiled code of a template binds to the verdict of passes_values_on.
VERDICT = "stepmail_passes_values_on"
# Filters the stylesheet extension wraps link attributes in: they read their value unmarked.
_LINK_FILTERS = frozenset({"track_link", "safe_link"})


class Marks:
    """One render's marks: how many it wrote, and whether its layout can be reused."""

    __slots__ = ("foreign", "templates_pass", "varied", "written")

    def __init__(self) -> None:
        self.written = 0
        self.varied = False  # a value was written unmarked: this mail's layout is its own
        self.foreign = False  # a value carried a mark's character itself
        self.templates_pass = True  # every template used passes values on (see module doc)

    def clean(self, html: str) -> bool:
        """The marked render, marks removed, is the unmarked one: every template passes values
        on, and every mark in ``html`` is one of this render's."""
        return (
            self.templates_pass
            and not self.foreign
            and html.count(OPEN) == self.written
            and html.count(CLOSE) == self.written
        )


_MARKS: ContextVar[Marks | None] = ContextVar("stepmail_marks", default=None)


@contextmanager
def marking() -> Iterator[Marks]:
    """Within this block, the mail environment marks the values it writes."""
    marks = Marks()
    reset = _MARKS.set(marks)
    try:
        yield marks
    finally:
        _MARKS.reset(reset)


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
    """The environment's ``finalize``: the value between marks while :func:`marking` is on.
    Jinja escapes what this returns, and escaping leaves the marks as they are.

    It takes the eval context so that Jinja never calls it at compile time on a constant,
    which would bake marks into the code."""
    marks = _MARKS.get()
    if marks is None or hasattr(value, "__html__"):
        return value  # Markup: a macro's output, marked inside, or |safe, part of the layout
    text = value if type(value) is str else str(value)
    if not text:
        return value
    if opaque(text):
        marks.written += 1
        return OPEN + text + CLOSE
    if OPEN in text or CLOSE in text:
        marks.foreign = True
    marks.varied = True
    return text


def opaque(text: str) -> bool:
    """A value the text converter copies as it is, wherever it stands: printable (no line
    breaks, no non-breaking or zero-width spaces), no space at either end, none doubled."""
    return text.isprintable() and text[0] != " " and text[-1] != " " and "  " not in text


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
            value = value.replace(OPEN, "").replace(CLOSE, "")  # Markup stays Markup
        link = link_filter(value)
        read = html.unescape(str(link))
        if read and opaque(read):
            marks.written += 1
            return Markup(OPEN + link + CLOSE)  # noqa: S704 (the link's own escaping kept)
        marks.varied = True
        return link

    return filtered


def unmarked(html: str) -> str:
    return html.replace(OPEN, "").replace(CLOSE, "")


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
