"""The plain-text part of a mail, made from its HTML, once per layout.

Converting HTML to text was the largest single cost of a send: ~19% of a worker's CPU
(bench/README, "Session 16"). But a batch's mails mostly share their HTML but for a few
values (one step, tier and language; another name and other signed links), and the text of
that *layout* is the same but for the same values. :mod:`orchestrator.rendering.slots` marks
where each value stands; :class:`LayoutTexts` converts a layout once, with numbered marks,
and then fills each later mail's values into that text.

A layout is learnt the second time it is seen (a mail whose HTML is its own costs one
conversion, not two), from a mail whose values the converter copies as they are
(:func:`opaque`), and only when the text filled from it is, for that mail, exactly the text
converted from its HTML. A later mail is filled only when its values are opaque too, so what
held for the first holds for it; any other mail is converted.
"""

from __future__ import annotations

import html as html_lib
import re
import threading

from resiliparse.extract.html2text import extract_plain_text

from orchestrator.rendering.slots import OPEN

_BLANK_RUNS = re.compile(r"\n{3,}")
# Never part of the text: the inbox preview line is hidden in the HTML, and so it is here.
_NOT_TEXT = [".preheader", "head", "style", "script"]
# While a layout is learnt, each value's mark carries its number: a character of the
# supplementary private-use planes (the converter keeps them, and reorders values: a link's
# address is written after its text).
_FIRST_NUMBER = 0xF0000
_MOST_VALUES = 0xFFFE
# Marks of their own, apart from the render's (slots.OPEN): a learnt text is split on these.
_VALUE_OPEN, _VALUE_CLOSE = "\ue00e", "\ue00f"
_NUMBERED = re.compile(
    f"{_VALUE_OPEN}([\U000f0000-\U000ffffd])([^{_VALUE_OPEN}{_VALUE_CLOSE}]*){_VALUE_CLOSE}"
)


def plain_text(html: str) -> str:
    """The text part from the HTML, links written out as ``text (url)``.

    resiliparse (Apache-2.0, C++) is used rather than inscriptis: both keep the reading
    order, but this is about seven times faster, and the text part is made for every send.
    """
    text = extract_plain_text(
        html,
        preserve_formatting=True,
        main_content=False,
        links=True,
        alt_texts=True,
        list_bullets=True,
        skip_elements=_NOT_TEXT,
    )
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def opaque(text: str) -> bool:
    """A value the converter copies as it is, wherever it stands: printable (no line
    breaks, no non-breaking or zero-width spaces), not empty, no space at either end, none
    doubled."""
    return text.isprintable() and text[:1] not in ("", " ") and text[-1] != " " and "  " not in text


def _read(value: str) -> str:
    """A value as the HTML carries it, as the converter reads it."""
    return html_lib.unescape(value) if "&" in value else value


class _LayoutText:
    """A layout's text: fixed pieces, and after each the number of the value that follows."""

    __slots__ = ("head", "rest")

    def __init__(self, head: str, rest: tuple[tuple[int, str], ...]) -> None:
        self.head = head
        self.rest = rest

    def fill(self, values: list[str]) -> str | None:
        """The text with these values, or None when one of them might not be copied as it is.

        :func:`_read` and :func:`opaque` are written out inline: a mail fills ~18 values, two
        Python calls each at ~1,400 instructions a call (with the short macro call, −23,900
        instructions a render: bench/README, "Session 40");
        ``tests/unit/rendering/test_text_part.py`` holds the copies to the functions."""
        pieces = [self.head]
        for number, piece in self.rest:
            value = values[number]
            if "&" in value:
                value = html_lib.unescape(value)
            if (
                not value.isprintable()
                or value[:1] in ("", " ")
                or value[-1] == " "
                or "  " in value
            ):
                return None
            pieces += (value, piece)
        return "".join(pieces)


_NOT_REUSABLE = _LayoutText("", ())


# How many layouts of one shape (as many pieces, as many characters) are compared piece by
# piece before the joined layout is looked up; more than a few is rare.
_LAYOUTS_A_SHAPE = 4
_ShapeEntry = tuple[list[str], _LayoutText]


class LayoutTexts:
    """Text parts by layout, for one renderer's mails. Safe to share between threads; at most
    ``layouts`` layouts are kept (the oldest goes first)."""

    def __init__(self, layouts: int = 256, sightings: int = 4096) -> None:
        self._layouts = layouts
        self._sightings = sightings
        self._texts: dict[str, _LayoutText] = {}
        # The layouts last found for each shape (its pieces' count and length), newest
        # first, with their fixed pieces: a mail of one of them is known by comparing its
        # pieces (memcmp), not by joining them and hashing the result, which read the whole
        # HTML twice (bench/README, "Session 27"). A few a shape, so that layouts of one shape
        # sent in turn do not evict each other (each mail would join and hash again).
        self._by_shape: dict[tuple[int, int], tuple[_ShapeEntry, ...]] = {}
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def text(self, html: str, pieces: list[str] | None) -> str:
        """The text part of ``html``; ``pieces`` is the same HTML cut at its values (fixed
        HTML and values alternating: :func:`orchestrator.rendering.slots.cut`), or None."""
        if pieces is None:
            return plain_text(html)
        fixed = pieces[0::2]
        shape = (len(fixed), sum(map(len, fixed)))
        for shape_fixed, shape_text in self._by_shape.get(shape, ()):
            if shape_fixed == fixed:
                return _filled(shape_text, html, pieces)
        layout = OPEN.join(fixed)
        known = self._texts.get(layout)
        if known is None:
            text = plain_text(html)
            if self._seen_before(layout):
                self._keep(layout, _learn(pieces, text))
            return text
        self._remember_shape(shape, fixed, known)
        return _filled(known, html, pieces)

    def _remember_shape(self, shape: tuple[int, int], fixed: list[str], known: _LayoutText) -> None:
        with self._lock:
            if len(self._by_shape) >= self._layouts:
                self._by_shape.clear()
            others = self._by_shape.get(shape, ())
            self._by_shape[shape] = ((fixed, known), *others[: _LAYOUTS_A_SHAPE - 1])

    def _seen_before(self, layout: str) -> bool:
        key = hash(layout)
        with self._lock:
            if key in self._seen:
                return True
            if len(self._seen) >= self._sightings:
                self._seen.clear()
            self._seen.add(key)
            return False

    def _keep(self, layout: str, text: _LayoutText | None) -> None:
        if text is None:
            return  # this mail had a value that might not be copied: learn from another
        with self._lock:
            while len(self._texts) >= self._layouts:
                del self._texts[next(iter(self._texts))]
            self._texts[layout] = text


def _filled(known: _LayoutText, html: str, pieces: list[str]) -> str:
    """The text filled from a known layout's, or converted when it cannot be."""
    if known is not _NOT_REUSABLE:
        filled = known.fill(pieces[1::2])
        if filled is not None:
            return filled
    return plain_text(html)


def _learn(pieces: list[str], text: str) -> _LayoutText | None:
    """The layout of ``pieces``, converted with numbered marks: :data:`_NOT_REUSABLE` unless
    filling it with these values gives back ``text``; None when a value is not opaque."""
    values = pieces[1::2]
    if not all(opaque(_read(value)) for value in values):
        return None
    if len(values) > _MOST_VALUES:
        return _NOT_REUSABLE
    numbered = [pieces[0]]
    for number, value in enumerate(values):
        number_mark = chr(_FIRST_NUMBER + number)
        numbered += (_VALUE_OPEN, number_mark, value, _VALUE_CLOSE, pieces[2 * number + 2])
    parts = _NUMBERED.split(plain_text("".join(numbered)))
    fixed = parts[0::3]
    if any(_VALUE_OPEN in piece or _VALUE_CLOSE in piece for piece in fixed):
        return _NOT_REUSABLE  # a mark the converter split from its value
    numbers = [ord(mark) - _FIRST_NUMBER for mark in parts[1::3]]
    layout = _LayoutText(fixed[0], tuple(zip(numbers, fixed[1:], strict=True)))
    return layout if layout.fill(values) == text else _NOT_REUSABLE
