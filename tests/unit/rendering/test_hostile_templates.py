"""Template files a hostile fuzz wrote: each is a :class:`TemplateError` naming the file (and
the line where one is known), never another exception from Jinja, the file system or the
text converter: ``stepmail check`` reports only TemplateError, and the worker fails only the
send that raised it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from orchestrator.errors import TemplateError
from orchestrator.guards import jinja_steps
from orchestrator.rendering import renderer
from orchestrator.rendering.css import STYLESHEET
from orchestrator.rendering.renderer import MailRenderer

_LAYOUT = (
    "<html><head><title>{% block subject %}{% endblock %}</title></head>\n"
    "<body>{% block content %}{% endblock %}</body></html>\n"
)
_STEP = (
    '{% extends "layout.html" %}\n'
    "{% block subject %}Hi{% endblock %}\n"
    "{% block content %}<p>{{ vars.note }}</p>{% endblock %}\n"
)
_CONTEXT = {"vars": {"note": "hello"}}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "layout.html").write_text(_LAYOUT, "utf-8")
    (tmp_path / "step.html").write_text(_STEP, "utf-8")
    return tmp_path


def _error(folder: Path, template: str = "step", context: Mapping[str, object] = _CONTEXT) -> str:
    with pytest.raises(TemplateError) as caught:
        MailRenderer(folder, "en").render(template, "low", "en", context)
    return str(caught.value)


@pytest.mark.parametrize("name", ["step.html", "layout.html", "step.txt"])
def test_a_template_that_is_not_utf8_names_its_line(folder: Path, name: str) -> None:
    path = folder / name
    text = path.read_bytes() if path.exists() else b"{{ vars.note }}\n"
    path.write_bytes(text + b"caf\xe9\n")
    line = text.count(b"\n") + 1
    assert _error(folder) == f"{name}:{line}: not UTF-8 (byte 0xe9); save the file as UTF-8"


def test_a_stylesheet_that_is_not_utf8_names_its_line(folder: Path) -> None:
    (folder / STYLESHEET).parent.mkdir()
    (folder / STYLESHEET).write_bytes(b"p { color: red; }\n/* caf\xe9 */\n")
    assert _error(folder) == f"{STYLESHEET}:2: not UTF-8 (byte 0xe9); save the file as UTF-8"


def test_extends_twice_names_the_template(folder: Path) -> None:
    (folder / "step.html").write_text('{% extends "layout.html" %}' + _STEP, "utf-8")
    assert _error(folder) == "step.html:1: extended multiple times"


@pytest.mark.parametrize(
    ("content", "context"),
    [
        ('{{ "\\ud800" }}', _CONTEXT),  # a literal of the template
        ("{{ vars.note }}", {"vars": {"note": "\ud800"}}),  # a journey's vars
    ],
)
def test_a_lone_surrogate_in_the_mail_names_the_template(
    folder: Path, content: str, context: Mapping[str, object]
) -> None:
    (folder / "step.html").write_text(_STEP.replace("{{ vars.note }}", content), "utf-8")
    message = _error(folder, context=context)
    assert message.startswith("step.html: renders a lone surrogate (U+D800 to U+DFFF")


def test_a_template_name_too_long_for_the_file_system_is_not_found(folder: Path) -> None:
    name = "x" * 300
    assert _error(folder, name) == f"{name}: no HTML template for tier 'low', locale 'en'"


def test_a_template_too_large_to_be_a_mail_is_refused_before_compiling(folder: Path) -> None:
    """A 54 MB template compiled for a minute, in check and in every worker."""
    (folder / "layout.html").write_text(_LAYOUT + "<!-- padding -->\n" * 70_000, "utf-8")
    assert _error(folder) == (
        "layout.html:1: larger than 1,000,000 characters: too large to be a mail template"
    )


def test_a_text_doubled_in_a_loop_stops_at_its_line(folder: Path) -> None:
    (folder / "step.html").write_text(
        _STEP.replace(
            "<p>{{ vars.note }}</p>",
            "{% set ns = namespace(t='x') %}\n{% for _ in range(40) %}\n"
            "{% set ns.t = ns.t ~ ns.t %}\n{% endfor %}{{ ns.t }}",
        ),
        "utf-8",
    )
    assert _error(folder).startswith("step.html:5: that makes 1,048,576 characters")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", 3),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}\n"
            "{{ f(40) }}",
            3,
        ),
        ("{% for i in range(300) %}\n{{ vars.note }}{% endfor %}", 4),  # a long value written
    ],
    ids=["nested-loops", "macro-twice-a-level", "long-value-in-a-loop"],
)
def test_work_past_the_step_budget_stops_at_its_line(
    folder: Path, content: str, line: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ran for minutes within the growth bounds (27 s a render for the loops)."""
    monkeypatch.setattr(jinja_steps, "MAX_STEPS", 20_000)
    (folder / "step.html").write_text(_STEP.replace("<p>{{ vars.note }}</p>", content), "utf-8")
    message = _error(folder, context={"vars": {"note": "&" * 1000}})
    assert message.startswith(f"step.html:{line}: the template takes more than 20,000 steps")


def test_the_subject_html_and_text_of_a_mail_share_one_budget(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jinja_steps, "MAX_STEPS", 20_000)
    # a step a turn: 35% of the budget, twice (the layout writes the subject in its title)
    loop = "{% for i in range(7000) %}{% endfor %}"
    (folder / "step.html").write_text(_STEP.replace("Hi{%", f"Hi{loop}{{%"), "utf-8")
    MailRenderer(folder, "en").render("step", "low", "en", _CONTEXT)  # alone, it fits
    (folder / "step.txt").write_text(loop + "{{ vars.note }}", "utf-8")
    assert "20,000 steps" in _error(folder)


def test_a_mail_too_large_to_send_names_its_template(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renderer, "MAX_MAIL_CHARS", 10_000)
    (folder / "step.html").write_text(_STEP.replace("{{ vars.note }}", "x" * 20_000), "utf-8")
    assert _error(folder) == (
        "step.html: renders 20,064 characters of HTML; at most 10,000 (Gmail clips a mail "
        "past 102 KB)"
    )


def test_a_template_of_a_hundred_thousand_tags_compiles_in_linear_time(folder: Path) -> None:
    """Inlining the stylesheet looked back over all the markup before each start tag: a
    template of ~1,000,000 characters in 110,000 ``<p>`` took minutes to compile, in check,
    the preview and every worker (20,000 took 3.7 s, 10,000 1.2 s); now ~0.5 s for 100,000."""
    (folder / "step.html").write_text(
        _STEP.replace("<p>{{ vars.note }}</p>", "<p>x</p>\n" * 100_000 + "<p>{{ vars.note }}</p>"),
        "utf-8",
    )
    started = time.process_time()
    mail = MailRenderer(folder, "en").render("step", "low", "en", _CONTEXT)
    assert time.process_time() - started < 20  # minutes before; the bound is for slow hosts
    assert mail.html.count("<p>") == 100_001
    assert mail.html.endswith("<p>hello</p></body></html>")
