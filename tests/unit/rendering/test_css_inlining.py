"""The stylesheet is written into templates when Jinja compiles them: the cascade, tags that
span Jinja code, what cannot be inlined, errors with file and line (the shipped mails against
css-inline: tests/content/test_shipped_styles.py)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FrozenClock
from orchestrator.errors import TemplateError
from orchestrator.rendering.renderer import MailRenderer
from tests.support.environment import START

CSS = """
p { color: black; margin: 0; }
.note { color: grey; }
p.note { font-size: 12px; }
td { font-family: "Segoe UI", Arial; }
.loud { color: red !important; }
a, .link { color: blue; }
"""
SHELL = (
    "<html><head><title>{% block subject %}{% endblock %}</title><style>"
    "@media (x) { p { color: red } }</style></head><body>{% block content %}{% endblock %}"
    "</body></html>"
)

Render = Callable[..., str]


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "mail"
    (root / "layouts").mkdir(parents=True)
    (root / "layouts" / "mail.css").write_text(CSS, "utf-8")
    (root / "layouts" / "shell.html").write_text(SHELL, "utf-8")
    return root


@pytest.fixture
def recheck_after() -> float:
    return 0.0


@pytest.fixture
def render(templates: Path, recheck_after: float) -> Render:
    renderer = MailRenderer(templates, recheck_after=recheck_after)
    written = iter(range(1000))

    def render_content(content: str, **context: Any) -> str:
        """Render ``content`` as a new template: a rewrite within one mtime tick goes unseen."""
        name = f"t{next(written)}"
        source = (
            '{% extends "layouts/shell.html" %}{% block subject %}Hi{% endblock %}'
            "{% block content %}" + content + "{% endblock %}"
        )
        (templates / f"{name}.ja.html").write_text(source, "utf-8")
        body = renderer.render(name, "tech", "ja", context).html
        return body.split("<body>")[1].split("</body>")[0]

    return render_content


def render_page(templates: Path) -> str:
    (templates / "page.ja.html").write_text(
        '{% extends "layouts/shell.html" %}{% block subject %}Hi{% endblock %}', "utf-8"
    )
    return MailRenderer(templates).render("page", "tech", "ja", {}).html


def styles_of(markup: str, tag: str) -> list[str]:
    return [
        html.unescape(m.group(1)) for m in re.finditer(rf'<{tag}\b[^>]*style="([^"]*)"', markup)
    ]


def test_the_cascade_orders_by_specificity_then_source_order(render: Render) -> None:
    body = render('<p>a</p><p class="note">b</p><p class="note loud">c</p>')
    assert styles_of(body, "p") == [
        "color: black; margin: 0;",
        "color: grey; margin: 0; font-size: 12px;",
        "color: red !important; margin: 0; font-size: 12px;",
    ]


def test_the_templates_own_style_wins_unless_the_sheet_says_important(render: Render) -> None:
    body = render('<p style="color: green">a</p><p class="loud" style="color: green">b</p>')
    assert styles_of(body, "p") == [
        "color: black; margin: 0; color: green",
        "color: red !important; margin: 0; color: green",
    ]


def test_a_quoted_font_name_stays_inside_the_attribute(render: Render) -> None:
    body = render("<table><tr><td>x</td></tr></table>")
    assert "<td style=\"font-family: 'Segoe UI', Arial;\">x</td>" in body


def test_a_tag_around_jinja_code_is_styled(render: Render) -> None:
    body = render(
        '<a href="{{ url }}" class="link" {% if new %}target="_blank"{% endif %}>{{ label }}</a>',
        url="https://example.test/?a=1&b=2",
        label="<go>",
        new=True,
    )
    assert body == (
        '<a href="https://example.test/?a=1&amp;b=2" class="link" target="_blank"'
        ' style="color: blue;">&lt;go&gt;</a>'
    )


def test_tags_in_every_branch_are_styled(render: Render) -> None:
    source = '{% if loud %}<p class="loud">a</p>{% else %}<p class="note">b</p>{% endif %}'
    assert styles_of(render(source, loud=True), "p") == ["color: red !important; margin: 0;"]
    assert styles_of(render(source, loud=False), "p") == [
        "color: grey; margin: 0; font-size: 12px;"
    ]


def test_comments_and_style_blocks_are_left_alone(render: Render, templates: Path) -> None:
    outlook = '<!--[if mso]><p class="note">x</p><![endif]-->'
    assert render(outlook) == outlook
    page = (templates / "layouts" / "shell.html").read_text("utf-8")
    assert "<style>@media (x) { p { color: red } }</style>" in page
    assert "<style>@media (x) { p { color: red } }</style>" in render_page(templates)


@pytest.mark.parametrize(
    "tag",
    [
        '<p class="{{ kind }}">',
        '<p {% if kind %}class="note"{% endif %}>',
        '<p {% if kind %}style="color: red"{% endif %}>',
    ],
)
def test_a_class_or_style_chosen_by_jinja_is_refused_with_its_line(
    render: Render, tag: str
) -> None:
    with pytest.raises(TemplateError) as raised:
        render(f"\n{tag}a</p>", kind="note")
    assert raised.value.line == 2
    assert re.search(r"t\d+\.ja\.html$", raised.value.template)
    assert "class or style attribute" in raised.value.message


def test_a_start_tag_it_cannot_read_is_refused(render: Render) -> None:
    with pytest.raises(TemplateError) as raised:
        render("<p>if a<b then</p>")
    assert "cannot read this start tag" in raised.value.message


def test_errors_after_a_styled_tag_keep_their_line(render: Render) -> None:
    with pytest.raises(TemplateError) as raised:
        render('<p class="note">\none</p>\n<p>\n{{ missing.value }}</p>')
    assert raised.value.line == 4


@pytest.mark.parametrize(
    ("css", "line", "cause"),
    [
        ("p { color: red }\n.content p { color: blue }", 2, "'.content p' cannot be inlined"),
        ("p { color: red }\n\n@media (max-width: 600px) { p { color: blue } }", 3, "@media"),
        ("a:hover { color: red }", 1, "'a:hover' cannot be inlined"),
    ],
)
def test_a_selector_that_cannot_be_inlined_is_named_with_its_line(
    render: Render, templates: Path, css: str, line: int, cause: str
) -> None:
    (templates / "layouts" / "mail.css").write_text(css, "utf-8")
    with pytest.raises(TemplateError) as raised:
        render("<p>a</p>")
    assert raised.value.template.endswith("layouts/mail.css")
    assert raised.value.line == line
    assert cause in raised.value.message


@pytest.mark.parametrize("recheck_after", [0.0, 0.3])
def test_a_changed_stylesheet_is_seen_without_a_restart(
    templates: Path, recheck_after: float
) -> None:
    clock = FrozenClock(START)
    renderer = MailRenderer(templates, recheck_after=recheck_after, clock=clock)
    (templates / "page.ja.html").write_text(
        '{% extends "layouts/shell.html" %}{% block subject %}Hi{% endblock %}'
        "{% block content %}<p>a</p>{% endblock %}",
        "utf-8",
    )

    def page_style() -> list[str]:
        return styles_of(renderer.render("page", "tech", "ja", {}).html, "p")

    assert page_style() == ["color: black; margin: 0;"]
    sheet = templates / "layouts" / "mail.css"
    sheet.write_text("p { color: purple; }", "utf-8")
    later = sheet.stat().st_mtime_ns + 1_000_000
    os.utime(sheet, ns=(later, later))
    if recheck_after:  # the files are looked at again only after recheck_after seconds
        assert page_style() == ["color: black; margin: 0;"]
        clock.advance(timedelta(seconds=recheck_after / 2))
        assert page_style() == ["color: black; margin: 0;"]
        clock.advance(timedelta(seconds=recheck_after))
    assert page_style() == ["color: purple;"]


def test_without_a_stylesheet_templates_are_left_as_written(
    render: Render, templates: Path
) -> None:
    (templates / "layouts" / "mail.css").unlink()
    assert render('<p class="note">a</p>') == '<p class="note">a</p>'


def test_a_template_added_later_is_found_after_recheck_after(templates: Path) -> None:
    """The fallback chain is remembered; the folder is looked at again after a while."""
    clock = FrozenClock(START)
    renderer = MailRenderer(templates, recheck_after=0.3, clock=clock)
    shell = '{% extends "layouts/shell.html" %}{% block subject %}Hi{% endblock %}'
    (templates / "news.html").write_text(shell, "utf-8")
    assert renderer.resolve("news", "high", "ja") == "news.html"
    (templates / "news.high.ja.html").write_text(shell, "utf-8")
    assert renderer.resolve("news", "high", "ja") == "news.html"
    clock.advance(timedelta(seconds=0.2))
    assert renderer.resolve("news", "high", "ja") == "news.html"
    clock.advance(timedelta(seconds=0.2))
    assert renderer.resolve("news", "high", "ja") == "news.high.ja.html"
