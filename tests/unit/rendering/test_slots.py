"""Values are marked only where the marks cannot change the mail: a template that reads what
it wrote (a filter block, a set block, an autoescape switch, a macro's output used as a value)
is drawn unmarked, and so is a mail whose values carry a mark's character."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from jinja2 import Environment
from markupsafe import Markup, escape

from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.slots import (
    CLOSE,
    OPEN,
    Marks,
    as_markup,
    cut,
    marking,
    passes_values_on,
)
from orchestrator.rendering.text_part import opaque, plain_text

_MACROS = """\
{% macro hello(name) %}<p>Hello {{ name }}</p>{% endmacro %}
{% macro box() %}<div>{{ caller() }}</div>{% endmacro %}
{% macro sessions(sessions) %}{% for s in sessions %}<li>{{ s }}</li>{% endfor %}{% endmacro %}
"""


def verdict(source: str) -> bool:
    return passes_values_on(Environment(autoescape=True).parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "<p>{{ name }} {{ name|upper }} {{ n + 1 }}</p>",
        "{% if name %}<b>{{ name }}</b>{% endif %}{% for x in items %}{{ x }}{% endfor %}",
        "{% set greeting = 'Hi ' ~ name %}{{ greeting }}",  # a value, not a block of output
        '{% import "m.html" as m %}{{ m.hello(name) }}{% call m.box() %}{{ name }}{% endcall %}',
        '{% from "m.html" import hello %}{{ hello(name) }}',
        "{% extends 'base.html' %}{% block body %}{{ super() }}{{ self.title() }}{% endblock %}",
        _MACROS,  # a parameter may share its macro's name
        '<a href="{% filter track_link %}{% filter safe_link %}{{ url }}{% endfilter %}'
        '{% endfilter %}">x</a>',
    ],
)
def test_templates_that_write_their_values_straight_out_pass(source: str) -> None:
    assert verdict(source)


@pytest.mark.parametrize(
    "source",
    [
        "{% filter upper %}{{ name }}{% endfilter %}",
        "{% filter truncate(5) %}{{ name }}{% endfilter %}",
        "{% set block %}{{ name }}{% endset %}{{ block|length }}",
        "{% autoescape false %}{{ name }}{% endautoescape %}",
        '{% import "m.html" as m %}{{ m.hello(name)|trim }}',
        '{% import "m.html" as m %}{% set h = m.hello(name) %}{{ h }}',
        '{% import "m.html" as m %}{% if m.hello(name)|length > 9 %}x{% endif %}',
        '{% from "m.html" import hello %}{{ hello(name) ~ "!" }}',
        "{% macro hello() %}x{% endmacro %}{{ [hello][0]() }}",
        "{% macro box() %}{{ caller()|striptags }}{% endmacro %}",
        "{% block title %}x{% endblock %}{{ self.title()|upper }}",
    ],
)
def test_templates_that_read_what_they_wrote_do_not(source: str) -> None:
    assert not verdict(source)


@pytest.mark.parametrize(
    "value", ["Ann", "山田 太郎", "O'Brien & <Sons>", "https://x.example/?a=1&b=2"]
)
def test_a_word_like_value_is_opaque(value: str) -> None:
    assert opaque(value)


@pytest.mark.parametrize(
    "value",
    [" Ann", "Ann ", "Ann  Lee", "Ann\nLee", "Ann\tLee", "Ann\u00a0Lee", "Ann\u200bLee", "\ue00e"],
)
def test_a_value_the_converter_might_change_is_not(value: str) -> None:
    assert not opaque(value)


def renderer_with(tmp_path: Path, files: dict[str, str]) -> MailRenderer:
    for name, source in files.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    return MailRenderer(tmp_path, "en")


def test_a_marked_draft_is_the_unmarked_render_with_its_layout_kept(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path, {"note.html": "{% block subject %}Hi{% endblock %}<p>Hello {{ name }}</p>"}
    )

    draft = renderer.draft("note", "tech", "en", {"name": "Ann & Bo"})

    assert draft.html == "Hi<p>Hello Ann &amp; Bo</p>"
    assert draft.pieces == ["Hi<p>Hello ", "Ann &amp; Bo", "</p>"]
    assert draft.finish().text == "Hi\n\nHello Ann & Bo\n"


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("<p>{% filter upper %}{{ name }}{% endfilter %}</p>", "<p>ANN</p>"),
        ("{% set t %}{{ name }}{% endset %}<p>{{ t|length }} {{ t }}</p>", "<p>3 Ann</p>"),
    ],
)
def test_a_layout_that_reads_its_values_is_drawn_unmarked(
    tmp_path: Path, layout: str, expected: str
) -> None:
    """The marks would change what the filter or ``|length`` sees: such a template is drawn
    again without them, and from then on drawn once, unmarked."""
    renderer = renderer_with(
        tmp_path,
        {
            "base.html": layout,
            "note.html": "{% extends 'base.html' %}{% block subject %}Hi{% endblock %}",
        },
    )
    drafts = [renderer.draft("note", "tech", "en", {"name": "Ann"}) for _ in range(2)]

    assert [draft.html for draft in drafts] == [expected, expected]
    assert [draft.pieces for draft in drafts] == [None, None]


@pytest.mark.parametrize(
    "hostile",
    [f"x{CLOSE}y{OPEN}", f"{OPEN}z{CLOSE}", f"{OPEN}", f"{CLOSE}x", f"a{OPEN}b{CLOSE}{CLOSE}"],
)
@pytest.mark.parametrize(
    "where",
    ["<p>{{ a }} and {{ b }}</p>", '<p>{{ a }}</p><a href="https://x.example/{{ b }}">x</a>'],
)
def test_a_value_carrying_a_marks_character_is_written_as_it_is(
    tmp_path: Path, hostile: str, where: str
) -> None:
    renderer = renderer_with(tmp_path, {"note.html": "{% block subject %}Hi{% endblock %}" + where})
    expected = renderer.env.get_template("note.html").render(a="Ann", b=hostile)

    draft = renderer.draft("note", "tech", "en", {"a": "Ann", "b": hostile})

    assert hostile in draft.html or "%" in draft.html  # kept (in a link, as the guard left it)
    assert draft.html == expected
    assert draft.finish().text == plain_text(draft.html)


def test_marks_are_written_only_while_marking(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"note.html": "<p>{{ 'constant' }} {{ name }}</p>"})
    template = renderer.env.get_template("note.html")

    with marking() as marks:
        marked = template.render(name="Ann")
    unmarked = template.render(name="Ann")

    assert marked == f"<p>{OPEN}constant{CLOSE} {OPEN}Ann{CLOSE}</p>"
    assert cut(marked, marks) == ["<p>", "constant", " ", "Ann", "</p>"]
    assert unmarked == "<p>constant Ann</p>"  # no mark was compiled into the code


def _cut_by_split_and_count(marked: str, marks: Marks) -> list[str] | None:
    """``cut`` as it was written before session 27: the reference it must agree with."""
    if not marks.templates_pass or marks.foreign:
        return None
    parts = marked.split(OPEN)
    if len(parts) != marks.written + 1 or marked.count(CLOSE) != marks.written:
        return None
    pieces = [parts[0]]
    for part in parts[1:]:
        value, close, rest = part.partition(CLOSE)
        if not close:
            return None
        pieces += (value, rest)
    return pieces


def test_cut_agrees_with_splitting_and_counting_on_every_short_text() -> None:
    """Every text of up to seven characters of text and marks, with 0 to 4 marks written:
    the pieces (or the refusal) are the reference's, marks in order or not."""
    checked = 0
    for length in range(8):
        for letters in itertools.product(("a", "é", OPEN, CLOSE), repeat=length):
            marked = "".join(letters)
            for written in range(5):
                marks = Marks()
                marks.written = written
                assert cut(marked, marks) == _cut_by_split_and_count(marked, marks), (
                    marked,
                    written,
                )
                checked += 1
    assert checked == 5 * sum(4**n for n in range(8))


@pytest.mark.parametrize(
    ("marked", "written"),
    [
        (f"<p>{OPEN}Ann{CLOSE}</p>", 2),  # fewer marks than written
        (f"<p>{OPEN}Ann{CLOSE}{OPEN}</p>", 1),  # an open mark too many
        (f"<p>{CLOSE}{OPEN}Ann{CLOSE}</p>", 1),  # a close mark before any open one
        (f"<p>{OPEN}{OPEN}Ann{CLOSE}</p>", 1),  # two open marks in a row
        (f"<p>{OPEN}Ann{CLOSE}{CLOSE}</p>", 1),  # a close mark too many
    ],
)
def test_cut_refuses_marks_the_render_did_not_write(marked: str, written: int) -> None:
    marks = Marks()
    marks.written = written
    assert cut(marked, marks) is None


@pytest.mark.parametrize("text", ["", "<b>&amp;</b>", "\x0e山田\x0f", "a\udcffb"])
def test_as_markup_is_markup_of_the_text(text: str) -> None:
    made = as_markup(text)
    assert type(made) is Markup
    assert made == Markup(text)  # noqa: S704 (the test's own text)
    assert made.__html__() == text
    assert str(escape(made)) == text  # markup: not escaped again
