"""CSS inlined once per template, as Jinja compiles it, instead of once per send.

Many email clients drop ``<style>`` blocks, so every rule must sit in a ``style=""``
attribute. Inlining each rendered mail cost about a tenth of a send's CPU; here the
stylesheet ``layouts/mail.css`` is written into the template's own start tags when Jinja
compiles the template, so the compiled template already carries its styles.

That is sound only because a selector may be ``tag``, ``.class`` or ``tag.class`` (or a list
of these): such a rule depends on the element alone, never on what Jinja puts around it, so
it can be applied to the template source. Anything else (descendants, pseudo-classes,
``@media``) is refused with its file and line. ``@media`` rules belong in a ``<style>``
block of the layout, which is sent as it is. A class attribute written by Jinja is refused
too: which rules match it is only known per send.

The same pass guards links: the value of every link attribute (``href``, ``src`` …) that Jinja
fills in is wrapped in ``{% filter safe_link %}``, so a ``javascript:`` or ``data:`` URL from
any source becomes ``#`` when the mail is rendered (:func:`orchestrator.guards.links.safe_link`);
a literal link with such a scheme, or an unquoted one Jinja fills in, is refused with its line.

And it marks the links a reader follows: the ``href`` of every ``<a>`` and ``<area>`` (written
by Jinja, or a literal http(s) link) is wrapped in ``{% filter track_link %}``, which turns it
into a signed redirect link when the mail being rendered tracks clicks, and leaves it as it is
otherwise (:mod:`orchestrator.tracking.links`). So tracking costs a filter call per link, not a
parse of each mail.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tinycss2
from jinja2 import Environment
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

from orchestrator.errors import StylesheetError
from orchestrator.guards.jinja_nesting import MAX_SOURCE_CHARS
from orchestrator.guards.links import RENDERED_SCHEMES, WEB_SCHEMES, link_scheme, safe_link
from orchestrator.rendering.lookup import not_utf8
from orchestrator.rendering.mail_files import MailFileTooLarge, read_mail_file
from orchestrator.rendering.slots import link_filter_reading_unmarked
from orchestrator.tracking.links import guarded_track_link, track_link

STYLESHEET = "layouts/mail.css"
_TOO_LARGE = f"larger than {MAX_SOURCE_CHARS:,} characters: too large to be a mail stylesheet"

_SELECTOR = re.compile(r"(?P<tag>[a-zA-Z][a-zA-Z0-9]*)?(?P<classes>(?:\.[a-zA-Z_-][\w-]*)*)")
# A run of Jinja tokens stands in the markup as \ue000<n>\ue001 while start tags are rewritten.
_HOLE = re.compile("\ue000(\\d+)\ue001")
# Where a link filter begins and ends: marks like \ue000o\ue001 become filter tags. o: safe_link,
# t: track_link, s: guarded_track_link (guarded first, then tracked: one filter, so a link
# written with marks is read once, see rendering/slots); c closes the filter.
_FILTERS = {"o": ("safe_link",), "t": ("track_link",), "s": ("guarded_track_link",)}
_CLOSES = {"c": 1}
_PIECE = re.compile("\ue000(\\d+|[otsc])\ue001")
_TRACKED_TAGS = frozenset({"a", "area"})  # their href is followed by the reader
LINK_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "background", "poster", "cite", "longdesc"}
    | {"lowsrc", "dynsrc", "data", "codebase", "ping", "xlink:href"}
)
_MARKUP = re.compile(
    r"<!--.*?-->"  # comments, Outlook's conditional ones included, are left alone
    r"|<(?P<raw>style|script)\b.*?</(?P=raw)\s*>"  # so are style and script bodies
    r"|<(?P<tag>[a-zA-Z][a-zA-Z0-9-]*)"
    r"(?P<attrs>(?:\s+[^\s\"'<>/=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?"
    r"|\s*\ue000\d+\ue001)*)"  # Jinja code may sit between attributes
    r"\s*/?>"
    r"|<(?P<unreadable>[a-zA-Z])",  # a start tag the pattern above cannot read
    re.DOTALL | re.IGNORECASE,
)
_ATTRIBUTE = re.compile(
    r"(?P<name>[^\s\"'<>/=]+)(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?"
)


@dataclass(frozen=True)
class _Rule:
    tag: str | None
    classes: frozenset[str]
    order: int
    declarations: tuple[tuple[str, str, bool], ...]  # name, value, !important

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (len(self.classes), int(self.tag is not None), self.order)

    def matches(self, tag: str, classes: frozenset[str]) -> bool:
        return (self.tag is None or self.tag == tag) and self.classes <= classes


class Stylesheet:
    """Rules with element-only selectors, and the ``style`` value each element gets."""

    def __init__(self, css: str) -> None:
        try:
            self._rules = tuple(_parse(css))
        except RecursionError:  # tinycss2 parses nested blocks recursively
            line = _line_nested_past(css, _DEEPEST)
            raise StylesheetError(line, "CSS nested too deeply to parse") from None
        self.style_for = cache(self._style_for)

    def _style_for(self, tag: str, classes: frozenset[str]) -> str:
        """The cascade for one element: specificity, then source order; ``!important`` last."""
        normal: dict[str, str] = {}
        important: dict[str, str] = {}
        matching = sorted(
            (rule for rule in self._rules if rule.matches(tag, classes)),
            key=lambda rule: rule.specificity,
        )
        for rule in matching:
            for name, value, is_important in rule.declarations:
                (important if is_important else normal)[name] = value
        merged = {**normal, **{name: f"{value} !important" for name, value in important.items()}}
        return " ".join(f"{name}: {_attribute_safe(value)};" for name, value in merged.items())


_DEEPEST = 64  # brackets a stylesheet needs nested: a handful
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")


def _line_nested_past(css: str, depth: int) -> int:
    """The line where brackets are first nested deeper than ``depth`` (1 if they never are)."""
    nested, line = 0, 1
    for char in css:
        if char == "\n":
            line += 1
        elif char in _OPENING:
            nested += 1
            if nested > depth:
                return line
        elif char in _CLOSING:
            nested = max(0, nested - 1)
    return 1


def _parse(css: str) -> Iterator[_Rule]:
    for order, node in enumerate(tinycss2.parse_stylesheet(css, True, True)):
        if node.type == "error":
            raise StylesheetError(node.source_line, f"CSS syntax error: {node.message}")
        if node.type == "at-rule":
            raise StylesheetError(
                node.source_line,
                f"@{node.at_keyword} cannot be inlined: put it in a <style> block of the layout",
            )
        declarations = tuple(_declarations(node))
        for selector in tinycss2.serialize(node.prelude).split(","):
            tag, classes = _simple_selector(selector.strip(), node.source_line)
            yield _Rule(tag, classes, order, declarations)


def _declarations(rule: tinycss2.ast.QualifiedRule) -> Iterator[tuple[str, str, bool]]:
    for item in tinycss2.parse_declaration_list(rule.content, True, True):
        if item.type == "error":
            raise StylesheetError(item.source_line, f"CSS syntax error: {item.message}")
        if item.type == "declaration":
            yield item.lower_name, tinycss2.serialize(item.value).strip(), item.important


def _simple_selector(selector: str, line: int) -> tuple[str | None, frozenset[str]]:
    match = _SELECTOR.fullmatch(selector)
    if not selector or match is None:
        raise StylesheetError(
            line,
            f"selector {selector!r} cannot be inlined once per template: "
            "use tag, .class or tag.class",
        )
    tag = match["tag"].lower() if match["tag"] else None
    return tag, frozenset(filter(None, match["classes"].split(".")))


def _class_and_style(attrs: str) -> dict[str, re.Match[str]]:
    """The tag's class and style attributes; ValueError when Jinja writes or chooses one."""
    found: dict[str, re.Match[str]] = {}
    for attr in _ATTRIBUTE.finditer(attrs):
        plain = _HOLE.sub("", attr["name"]).lower()
        if plain not in ("class", "style"):
            continue
        if attr["name"].lower() != plain or (
            plain == "class" and "\ue000" in (attr["value"] or "")
        ):
            raise ValueError(plain)
        found.setdefault(plain, attr)  # as in HTML, the first of two wins
    return found


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" else value


def _attribute_safe(value: str) -> str:
    """CSS strings may use either quote; the attribute is double-quoted."""
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    return value.replace('"', "'") if "'" not in value else value.replace('"', "&quot;")


class StylesheetFile:
    """``layouts/mail.css`` of a templates folder, parsed again only when the file changes
    (a stylesheet that fails to parse too: every template compiled reports the same error,
    without parsing it again)."""

    def __init__(self, templates_dir: Path) -> None:
        self.path = templates_dir / STYLESHEET
        self._parsed: tuple[int, Stylesheet | StylesheetError | None] | None = None

    def version(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def load(self) -> Stylesheet | None:
        version = self.version()
        if self._parsed is None or self._parsed[0] != version:
            try:
                css = self._read() if version else None
                self._parsed = (version, Stylesheet(css) if css is not None else None)
            except StylesheetError as exc:
                self._parsed = (version, exc)
        parsed = self._parsed[1]
        if isinstance(parsed, StylesheetError):
            raise StylesheetError(parsed.line, str(parsed))  # a new one: no traceback to grow
        return parsed

    def _read(self) -> str:
        """The file's text; one that is not UTF-8, cannot be read, is not a regular file (a FIFO
        blocked every compile, ``/dev/zero`` ran out of memory) or is past the bound is a
        stylesheet error, as a syntax error is (every template that inlines it names the
        file)."""
        try:
            return read_mail_file(self.path)  # a regular file, within the bound, or an error
        except UnicodeDecodeError as exc:
            raise StylesheetError(*not_utf8(exc)) from None
        except OSError as exc:
            raise StylesheetError(0, f"cannot be read: {exc.strerror or exc}") from None
        except MailFileTooLarge:
            raise StylesheetError(0, _TOO_LARGE) from None


class InlineStylesheet(Extension):
    """Writes the stylesheet into the start tags of every ``.html`` template it compiles, and
    guards the links Jinja fills in.

    The environment names the stylesheet: ``environment.extend(mail_stylesheet=...)``.
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.setdefault("safe_link", link_filter_reading_unmarked(safe_link))
        environment.filters.setdefault("track_link", link_filter_reading_unmarked(track_link))
        environment.filters.setdefault(
            "guarded_track_link", link_filter_reading_unmarked(guarded_track_link)
        )

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        if not (stream.name or "").endswith(".html"):
            return stream
        source: StylesheetFile | None = getattr(self.environment, "mail_stylesheet", None)
        stylesheet = None
        if source is not None:
            try:
                stylesheet = source.load()
            except StylesheetError as exc:
                path = str(source.path)
                raise TemplateSyntaxError(str(exc), exc.line, STYLESHEET, path) from None
        return _inline(list(stream), stylesheet, stream.name, stream.filename)


def _inline(
    tokens: list[Token], stylesheet: Stylesheet | None, name: str | None, filename: str | None
) -> list[Token]:
    """Rewrite the markup of the data tokens while each run of other tokens waits as a hole.

    The markup alternates data and holes, ``d0 H0 d1 H1 … dn``; the holes come back, in
    order and untouched, between the rewritten data.
    """
    datas: list[tuple[int, str]] = [(tokens[0].lineno if tokens else 1, "")]
    holes: list[list[Token]] = []
    in_hole = False
    for token in tokens:
        if token.type != "data":
            if not in_hole:
                holes.append([])
            holes[-1].append(token)
            in_hole = True
        elif "\ue000" in token.value:
            raise TemplateSyntaxError(
                "U+E000 cannot appear in a template", token.lineno, name, filename
            )
        elif in_hole:
            datas.append((token.lineno, token.value))
            in_hole = False
        else:
            line, text = datas[-1]
            datas[-1] = (line if text else token.lineno, text + token.value)
    if in_hole:
        datas.append((holes[-1][-1].lineno, ""))
    markup = "".join(
        text + (f"\ue000{index}\ue001" if index < len(holes) else "")
        for index, (_, text) in enumerate(datas)
    )

    # Where each start tag is (its data's line, and the newlines since), read on from the last
    # tag's, as re.sub meets them in order: looking back over all the markup before each tag
    # took a million-character template of 124,000 tags minutes to compile.
    position, slot, newlines = 0, 0, 0  # read up to position: the holes before it, and the
    # newlines since the last of them

    def style(match: re.Match[str]) -> str:
        nonlocal position, slot, newlines
        start = match.start()
        for hole in _HOLE.finditer(markup, position, start):
            slot, newlines, position = slot + 1, 0, hole.end()
        newlines += markup.count("\n", position, start)
        position = start
        return _styled_tag(match, stylesheet, datas[slot][0] + newlines, name, filename)

    pieces = _PIECE.split(_MARKUP.sub(style, markup))
    out: list[Token] = []
    slot = 0  # the data after hole n is datas[n + 1]
    for position, piece in enumerate(pieces):
        if position % 2 == 0:
            if piece:
                out.append(Token(datas[slot][0], "data", piece))
        elif piece.isdigit():
            out.extend(holes[int(piece)])
            slot = int(piece) + 1
        else:
            out.extend(_guard_tokens(piece, datas[slot][0]))
    return out


def _guard_tokens(piece: str, line: int) -> list[Token]:
    """``{% filter safe_link %}`` (one per filter the mark names) or ``{% endfilter %}`` (one
    for each filter it closes), as the lexer would have made them."""
    if piece in _FILTERS:
        blocks: list[tuple[str, ...]] = [("filter", name) for name in _FILTERS[piece]]
    else:
        blocks = [("endfilter",)] * _CLOSES[piece]
    tokens: list[Token] = []
    for words in blocks:
        names = [Token(line, "name", word) for word in words]
        tokens += [Token(line, "block_begin", "{%"), *names, Token(line, "block_end", "%}")]
    return tokens


def _styled_tag(
    match: re.Match[str],
    stylesheet: Stylesheet | None,
    line: int,
    name: str | None,
    filename: str | None,
) -> str:
    """The start tag with the stylesheet's declarations first in its ``style`` attribute,
    and its links guarded."""
    tag, whole = match["tag"], match[0]
    if match["unreadable"]:
        raise TemplateSyntaxError(
            "cannot read this start tag to inline the stylesheet (write a '<' that starts "
            "no tag as &lt;)",
            line,
            name,
            filename,
        )
    if tag is None:  # a comment, or a style or script element
        return whole
    attrs = match["attrs"] or ""
    try:
        found = _class_and_style(attrs)
    except ValueError:
        raise TemplateSyntaxError(
            f"<{tag}>: a class or style attribute written or chosen by Jinja cannot get "
            "the stylesheet, which is inlined when the template is compiled: write it as "
            "plain text and put the condition around the whole tag",
            line,
            name,
            filename,
        ) from None
    class_attr, style_attr = found.get("class"), found.get("style")
    class_value = _unquote(class_attr["value"] or "") if class_attr else ""
    declarations = ""
    if stylesheet is not None:
        declarations = stylesheet.style_for(tag.lower(), frozenset(class_value.split()))
    offset = match.start("attrs") - match.start()
    head, tail = whole[: offset + len(attrs)], whole[offset + len(attrs) :]
    styled = _with_style(head, offset, style_attr, declarations)
    try:
        return _guarded_links(styled, offset, tag.lower() in _TRACKED_TAGS) + tail
    except ValueError as exc:
        raise TemplateSyntaxError(f"<{tag}>: {exc}", line, name, filename) from None


def _with_style(head: str, offset: int, style_attr: re.Match[str] | None, declarations: str) -> str:
    """``head`` (the tag up to its last attribute) with the declarations first in its style."""
    if not declarations:
        return head
    if style_attr is None:
        return f'{head} style="{declarations}"'
    # The template's own declarations come after the stylesheet's, so they win, as in CSS.
    own = _unquote(style_attr["value"] or "").replace('"', "&quot;")
    begin, end = offset + style_attr.start("value"), offset + style_attr.end("value")
    return f'{head[:begin]}"{declarations} {own}"{head[end:]}'


def _guarded_links(tag: str, offset: int, tracked: bool) -> str:
    """``tag[offset:]`` holds the attributes: each link attribute Jinja fills in is put
    inside guard marks; a literal link must be http(s), mailto or relative (ValueError). With
    ``tracked`` (an ``<a>`` or ``<area>``), its ``href`` is also marked for ``track_link``
    when Jinja fills it in or it is a literal http(s) link."""

    def guard(attr: re.Match[str]) -> str:
        plain, value = _HOLE.sub("", attr["name"]).lower(), attr["value"]
        if plain not in LINK_ATTRIBUTES or value is None:
            return attr[0]
        if "\ue000" in attr["name"]:
            raise ValueError(f"the name of a {plain} attribute cannot be written by Jinja")
        track = tracked and plain == "href"
        start = attr.start("value") - attr.start()
        if "\ue000" not in value:
            scheme = link_scheme(html.unescape(_unquote(value)))
            if scheme is not None and scheme not in RENDERED_SCHEMES:
                raise ValueError(f"{plain}: a {scheme}: link cannot be in a mail")
            if not track or scheme not in WEB_SCHEMES:
                return attr[0]
            return attr[0][:start] + _marked(value, "t", "c")
        if value[0] not in "\"'":
            raise ValueError(f"{plain}: quote a link that Jinja fills in")
        opening, closing = ("s", "c") if track else ("o", "c")
        return attr[0][:start] + _marked(value, opening, closing)

    return tag[:offset] + _ATTRIBUTE.sub(guard, tag[offset:])


def _marked(value: str, opening: str, closing: str) -> str:
    """An attribute value with filter marks inside its quotes (around it, if unquoted)."""
    open_mark, close_mark = f"\ue000{opening}\ue001", f"\ue000{closing}\ue001"
    if value[0] in "\"'":
        return f"{value[0]}{open_mark}{value[1:-1]}{close_mark}{value[-1]}"
    return f"{open_mark}{value}{close_mark}"
