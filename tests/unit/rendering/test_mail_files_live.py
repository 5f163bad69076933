"""The folder's loader and stylesheet read mail files as a version's snapshot does
(:mod:`orchestrator.rendering.mail_files`): a stylesheet symlinked to ``/dev/zero`` ran out of
memory and a FIFO hung ``check``, ``simulate`` and ``preview``; a 50 MB template was read whole
before it was refused; and a missing ``{% include … ignore missing %}`` failed the mail with
"cannot be read: None"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.errors import TemplateError
from orchestrator.guards.jinja_nesting import TOO_LARGE
from orchestrator.rendering import mail_files
from orchestrator.rendering.css import STYLESHEET
from orchestrator.rendering.renderer import MailRenderer

_LAYOUT = (
    "<html><head><title>{% block subject %}{% endblock %}</title></head>\n"
    "<body>{% block content %}{% endblock %}</body></html>\n"
)


def _step(folder: Path, content: str = "<p>body</p>") -> None:
    (folder / "step.html").write_text(
        '{% extends "layout.html" %}\n'
        "{% block subject %}Hi{% endblock %}\n"
        f"{{% block content %}}{content}{{% endblock %}}\n",
        "utf-8",
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("not-a-template-secret", "utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "layout.html").write_text(_LAYOUT, "utf-8")
    (templates / "layouts").mkdir()
    _step(templates)
    return templates


def _error(folder: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        MailRenderer(folder, "en").render("step", "low", "en", {})
    return str(caught.value)


def test_a_stylesheet_symlinked_to_a_device_is_an_error_unread(folder: Path) -> None:
    (folder / STYLESHEET).symlink_to("/dev/zero")
    assert _error(folder) == f"{STYLESHEET}: cannot be read: not a regular file"  # no line 0


def test_a_stylesheet_that_is_a_fifo_is_an_error_at_once(folder: Path) -> None:
    os.mkfifo(folder / STYLESHEET)
    started = time.monotonic()
    assert _error(folder) == f"{STYLESHEET}: cannot be read: not a regular file"  # no line 0
    assert time.monotonic() - started < 5


def test_a_stylesheet_past_the_bound_is_an_error(folder: Path) -> None:
    with (folder / STYLESHEET).open("wb") as file:
        file.truncate(50 * 1024 * 1024)
    assert "too large to be a mail stylesheet" in _error(folder)


def test_a_stylesheet_still_applies(folder: Path) -> None:
    (folder / STYLESHEET).write_text("p { color: red; }\n", "utf-8")
    mail = MailRenderer(folder, "en").render("step", "low", "en", {})
    assert '<p style="color: red;">body</p>' in mail.html


def test_a_template_past_the_bound_is_refused_and_not_read_whole(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (folder / "layout.html").open("ab") as file:
        file.truncate(50 * 1024 * 1024)
    reads: list[int] = []
    real_fdopen = os.fdopen

    class Counting:
        def __init__(self, file: object) -> None:
            self.file = file

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()  # type: ignore[attr-defined]

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            data: bytes = self.file.read(size)  # type: ignore[attr-defined]
            return data

    monkeypatch.setattr(os, "fdopen", lambda *a: Counting(real_fdopen(*a)))
    assert _error(folder) == f"layout.html:1: {TOO_LARGE}"
    assert reads and all(0 < size <= mail_files.MAX_BYTES + 1 for size in reads)


@pytest.mark.parametrize(
    "include",
    [
        '{% include "nope.html" ignore missing %}',
        '{% include "../secret.txt" ignore missing %}',
        '{% include "/etc/hostname" ignore missing %}',
        '{% include ["nope.html", "../secret.txt"] ignore missing %}',
    ],
)
def test_a_missing_include_that_may_be_missing_is_left_out(folder: Path, include: str) -> None:
    _step(folder, f"<p>a{include}b</p>")
    mail = MailRenderer(folder, "en").render("step", "low", "en", {})
    assert "<p>ab</p>" in mail.html


@pytest.mark.parametrize("name", ["nope.html", "../secret.txt", "a\x00b.html"])
def test_a_missing_include_is_named_as_not_found(folder: Path, name: str) -> None:
    _step(folder, f"{{% include {name!r} %}}")
    message = _error(folder)
    assert message == f"step.html:3: template not found: {name}"
    assert "None" not in message


def test_an_unreadable_template_says_why(folder: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    (folder / "layout.html").chmod(0)
    assert _error(folder) == "layout.html: cannot be read: Permission denied"
