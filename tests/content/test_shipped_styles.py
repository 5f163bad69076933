"""The shipped mails are styled exactly as css-inline styles them per send."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import css_inline
import pytest

from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.model import ALL_TIERS
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.tools.preview import render_sample
from tests.support.environment import START, make_settings

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


def _declarations(markup: str) -> list[tuple[str, dict[str, str]]]:
    """Each element's tag and the declarations in its style attribute, quotes normalised."""
    found = []
    for tag in re.finditer(r"<([a-z0-9]+)\b([^>]*)>", markup):
        if tag.group(1) in ("html", "head", "meta", "title", "style", "tbody"):
            continue
        style = re.search(r'style="([^"]*)"', tag.group(2))
        declarations = {}
        for item in html.unescape(style.group(1)).split(";") if style else []:
            if ":" in item:
                name, value = item.split(":", 1)
                declarations[name.strip()] = value.strip().replace("'", '"')
        found.append((tag.group(1), declarations))
    return found


def test_shipped_mails_are_styled_as_css_inline_styles_them(tmp_path: Path) -> None:
    """The reference: css-inline applied to each rendered mail with the stylesheet in a
    <style> block, as the renderer did before inlining moved to compile time."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    sheet = (settings.templates_dir / "layouts" / "mail.css").read_text("utf-8")
    inliner = css_inline.CSSInliner(
        load_remote_stylesheets=False, keep_style_tags=False, extra_css=sheet
    )
    compiled, plain = MailRenderer(settings.templates_dir), MailRenderer(settings.templates_dir)
    setattr(plain.env, "mail_stylesheet", None)  # noqa: B010 - the reference: raw markup
    compared = 0
    for journey in load_journeys(settings.journeys_dir).values():
        for step in journey.steps:
            for tier in (t for t in ALL_TIERS if t in step.tiers):
                for locale in ("ja", "en"):
                    ours = render_sample(settings, compiled, journey, step, tier, locale, START)
                    raw = render_sample(settings, plain, journey, step, tier, locale, START)
                    reference = inliner.inline(raw.html)
                    assert _declarations(ours.html) == _declarations(reference), (
                        f"{journey.id}/{step.id} {tier} {locale}"
                    )
                    compared += 1
    assert compared > 50
