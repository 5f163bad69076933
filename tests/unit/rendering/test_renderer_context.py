"""A mail's subject and HTML are drawn in one Jinja context (the subject's block first): the
mail is what two separate renders made, and neither sees what the other assigns."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import TemplateError
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.slots import OPEN

_LAYOUT = (
    '{% set brand = "Acme " ~ customer.name %}'
    "<html><title>{% block subject %}{% endblock %}</title>\n"
    "<body>{% block content %}{% endblock %}<p>{{ brand }} {{ seen is defined }}</p></body></html>"
)
_STEP = (
    '{% extends "layout.html" %}\n'
    '{% block subject %}{% set seen = "in the subject" %}'
    "Hi {{ customer.name }} {{ brand is defined }}{% endblock %}\n"
    "{% block content %}{% set local = 1 %}"
    '<p>{{ seen is defined }} <a href="{{ url }}">{{ customer.name }}</a></p>{% endblock %}'
)


@pytest.fixture
def renderer(tmp_path: Path) -> MailRenderer:
    (tmp_path / "layout.html").write_text(_LAYOUT)
    (tmp_path / "step.html").write_text(_STEP)
    (tmp_path / "broken.html").write_text(
        '{% extends "layout.html" %}{% block subject %}Hi{% endblock %}\n'
        "{% block content %}\n{{ customer.missing }}{% endblock %}"
    )
    return MailRenderer(tmp_path, "en")


def test_the_mail_is_what_separate_renders_make(renderer: MailRenderer) -> None:
    context = {"customer": {"name": "Ann <3"}, "url": "https://a.example/?q=1&r=2"}
    mail = renderer.render("step", "tech", "en", context)

    template = renderer.env.get_template("step.html")
    subject_alone = "".join(template.blocks["subject"](template.new_context(dict(context))))
    assert mail.subject == "Hi Ann <3 False" == subject_alone.replace("&lt;", "<")
    assert mail.html == template.render(context)
    # neither sees the other's assignments: the subject's set, the layout's set
    assert "<p>False <a" in mail.html and "Acme Ann &lt;3 False</p>" in mail.html


def test_a_mail_drawn_again_without_marks_is_the_same(renderer: MailRenderer) -> None:
    """A value carrying a mark's character makes the marked drawing untrustworthy: the mail is
    drawn again, in a new context, and is what a plain render makes."""
    context = {"customer": {"name": f"Ann{OPEN}"}, "url": "https://a.example/"}
    draft = renderer.draft("step", "tech", "en", context)
    assert draft.pieces is None
    assert draft.html == renderer.env.get_template("step.html").render(context)


def test_an_error_in_the_html_names_its_line(renderer: MailRenderer) -> None:
    with pytest.raises(TemplateError) as failed:
        renderer.render("broken", "tech", "en", {"customer": {"name": "Ann"}})
    assert (failed.value.template, failed.value.line) == ("broken.html", 3)
