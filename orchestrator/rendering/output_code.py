"""The mail templates' compiled output: each ``{{ … }}`` one Python call.

Jinja writes a value out as ``escape(environment.finalize(context.eval_ctx, value))``, or
``str(…)`` of the same in a text template: two calls a value, each ~1,400 instructions, and
a mail writes ~25 (bench/README, "Session 40"). The mail environment's code calls
:func:`~orchestrator.rendering.slots.written_html` or
:func:`~orchestrator.rendering.slots.written_text` instead, which do both jobs (the marks
and the step budget's charge of ``finalize``, and the escaping) in one. Inside an
``{% autoescape %}`` block, where whether to escape is known only as the template runs,
Jinja's own code stays (it calls the environment's ``finalize``, which is ``written_text``).

A lookup ``customer.name`` is a Python call too (``environment.getattr``), ~23 a mail. When the
name is no attribute of ``dict`` (known as the template is compiled), the code reads a plain
dict's item in place and calls ``environment.getattr`` only for anything else (another type,
a missing key): what :meth:`MailSandbox.getattr <orchestrator.rendering.environment.
MailSandbox.getattr>` answers for a plain dict, without the call.
"""

from __future__ import annotations

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst

from orchestrator.guards.jinja_operators import BoundedCode
from orchestrator.rendering import slots

# What a dict's attribute lookup finds before its items (``items``, ``get``, ``keys``...).
DICT_ATTRIBUTES = frozenset(dir(dict))

# Appended to every mail template's compiled module: the names its output code calls.
OUTPUT_NAMES = (
    f"from {slots.__name__} import {slots.written_html.__name__}, {slots.written_text.__name__}"
)


class MailCode(BoundedCode):
    """The bounded code generator, writing each value out with one call."""

    def _output_child_pre(
        self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo
    ) -> None:
        if frame.eval_ctx.volatile:
            super()._output_child_pre(node, frame, finalize)
        elif frame.eval_ctx.autoescape:
            self.write(f"{slots.written_html.__name__}(")
        else:
            self.write(f"{slots.written_text.__name__}(")

    def _output_child_post(
        self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo
    ) -> None:
        if frame.eval_ctx.volatile:
            super()._output_child_post(node, frame, finalize)
        else:
            self.write(")")

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        """``(t[name] if type(t := obj) is dict and name in t else environment.getattr(t,
        name))``: a plain dict's item without a call (``t`` a fresh temporary)."""
        if node.attr in DICT_ATTRIBUTES or self.environment.is_async:
            super().visit_Getattr(node, frame)
            return
        held, name = self.temporary_identifier(), repr(node.attr)
        # Two parentheses a level, as ``environment.getattr(`` had one: Python compiles at
        # most 200 (guards/jinja_nesting). The object needs none of its own: Jinja writes a
        # tuple in parentheses, and ``:=`` binds looser than anything else it writes.
        self.write(f"({held}[{name}] if type({held} := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {name} in {held} else environment.getattr({held}, {name}))")
