"""Templates and conditions nested past what Python compiles, reported as a syntax error at
their line instead of a crash from deep inside Jinja.

Jinja parses recursively and compiles a template to Python source, one level of
parentheses or indentation for each level of the template. So ``{{ ((((…x)))) }}`` a hundred
deep, three hundred conditions joined by ``and`` (each join one more parenthesis) or twenty-one
nested ``{% for %}`` raise ``RecursionError`` from the parser, or ``SyntaxError`` ("too many
nested parentheses", "too many statically nested blocks") from Python's compiler, and
``stepmail check`` showed a traceback. :class:`BoundedNesting` turns each into the
``TemplateSyntaxError`` every caller already handles, at the template's line: where the
parser stood, or the template line of the Python line that failed to compile.
"""

from __future__ import annotations

import re
from types import CodeType

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

_TOO_DEEP = (RecursionError, MemoryError)  # the parser and code generator recurse
_NOT_COMPILED = (SyntaxError, RecursionError, MemoryError)  # Python's own limits
_DEBUG_INFO = re.compile(r"^debug_info = '([0-9=&]*)'$", re.MULTILINE)
# Jinja writes a float constant as its repr, and a literal too large for a float (``1e999``,
# or ``1e308 + 1e308`` folded while compiling) is ``inf``: a name the compiled module lacks, so
# the render raised NameError and ``stepmail check`` printed a traceback. The module gets both.
_NON_FINITE = '\ninf = float("inf")\nnan = float("nan")\n'
MESSAGE = "nested too deeply to compile (fewer parentheses, parts or nested blocks)"
# A mail template is a few kilobytes (Gmail clips a mail's HTML past 102 KB).
MAX_SOURCE_CHARS = 1_000_000
TOO_LARGE = f"larger than {MAX_SOURCE_CHARS:,} characters: too large to be a mail template"


class BoundedNesting(Environment):
    """An environment whose parse and compile raise ``TemplateSyntaxError`` for a template
    nested too deeply or too large (mix it in before the environment class it extends)."""

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if len(source) > MAX_SOURCE_CHARS:  # compiling 50 MB took a minute, in every worker
            raise TemplateSyntaxError(TOO_LARGE, 1, name, filename)
        parser = Parser(self, source, name, filename)
        try:
            return parser.parse()
        except _TOO_DEEP:
            line = parser.stream.current.lineno
        raise TemplateSyntaxError(MESSAGE, line, name, filename)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        try:
            return super()._generate(source, name, filename, defer_init) + _NON_FINITE
        except _TOO_DEEP:
            line = deepest_line(source)
        raise TemplateSyntaxError(MESSAGE, line, name, filename)

    def _compile(self, source: str, filename: str) -> CodeType:
        try:
            return super()._compile(source, filename)
        except _NOT_COMPILED as exc:
            failed = getattr(exc, "lineno", None)
        # the template's name is not known here: the caller names it by the file
        raise TemplateSyntaxError(MESSAGE, template_line(source, failed), None, filename)


def template_line(code: str, code_line: int | None) -> int:
    """The template line of a line of the Python source Jinja generated for it, by the
    ``debug_info`` table Jinja writes at its end (1 when it says nothing of that line)."""
    found = _DEBUG_INFO.search(code)
    line = 1
    if code_line is None or found is None or not found.group(1):
        return line
    for pair in found.group(1).split("&"):
        template_lineno, _, generated = pair.partition("=")
        if int(generated) > code_line:
            break
        line = int(template_lineno)
    return line


def deepest_line(tree: nodes.Node) -> int:
    """The line of the most deeply nested node (walked without recursion: the tree is the
    one too deep to recurse through)."""
    deepest, line = -1, 1
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, line = depth, getattr(node, "lineno", None) or line
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return line
