"""Mail files are read only from inside the templates folder, only when they are regular files,
and at most a bound of them: a fuzz had a version's snapshot store ``/etc/hostname`` (and
render it into a subject), read ``/dev/zero`` until memory ran out, and block on a FIFO."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from orchestrator.errors import TemplateError
from orchestrator.guards.jinja_nesting import MAX_SOURCE_CHARS
from orchestrator.journeys.model import Journey
from orchestrator.rendering.css import STYLESHEET
from orchestrator.rendering.mail_files import (
    MAX_BYTES,
    MailFileTooLarge,
    read_mail_file,
    template_path,
)
from orchestrator.rendering.snapshot import SnapshotRenderer, used_templates

_SECRET = "not-a-template-secret"
_LAYOUT = (
    "<html><head><title>{% block subject %}{% endblock %}</title></head>\n"
    "<body>{% block content %}{% endblock %}</body></html>\n"
)


def _journey() -> Journey:
    """What :func:`used_templates` reads of a journey: one step, one tier."""
    step = SimpleNamespace(template="step", tiers=("low",))
    return cast(Journey, SimpleNamespace(steps=[step]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text(_SECRET, "utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "layout.html").write_text(_LAYOUT, "utf-8")
    return templates


def _step(folder: Path, subject: str) -> None:
    (folder / "step.html").write_text(
        '{% extends "layout.html" %}\n'
        f"{{% block subject %}}Hi {subject}{{% endblock %}}\n"
        "{% block content %}<p>body</p>{% endblock %}\n",
        "utf-8",
    )


# -- the reader ------------------------------------------------------------------------------


def test_a_regular_file_is_read_with_text_mode_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_bytes("caf\u00e9\r\nb\rc\n".encode())
    assert read_mail_file(path) == "caf\u00e9\nb\nc\n"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        read_mail_file(path)
    assert time.monotonic() - started < 5


def test_a_device_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.symlink_to("/dev/zero")
    with pytest.raises(OSError, match="not a regular file"):
        read_mail_file(path)


def test_a_file_past_the_bound_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    with path.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # sparse: 50 MB of NULs that take no disk
    with pytest.raises(MailFileTooLarge, match="too large"):
        read_mail_file(path)
    path.write_text("x" * (MAX_SOURCE_CHARS + 1), "utf-8")
    with pytest.raises(MailFileTooLarge):
        read_mail_file(path)
    assert MAX_BYTES == 4 * MAX_SOURCE_CHARS


@pytest.mark.parametrize("name", ["a\x00b.html", "a\ud800.html"])
def test_a_name_no_file_can_have_is_not_found(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError):
        read_mail_file(str(tmp_path / "x") + name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b.html", "a/b.html"),
        ("/etc/hostname", "etc/hostname"),  # as Jinja's loader: under the folder
        ("./a//b.html", "a/b.html"),
        ("../secret.txt", None),
        ("a/../../secret.txt", None),
    ],
)
def test_a_name_is_resolved_as_jinjas_loader_does(name: str, expected: str | None) -> None:
    found = template_path(Path("/t"), name)
    assert found == (None if expected is None else Path("/t") / expected)


# -- the version's snapshot ------------------------------------------------------------------


@pytest.mark.parametrize(
    "include",
    [
        '{% include "../secret.txt" %}',
        '{% include "../../templates/../secret.txt" ignore missing %}',
        '{% include "{secret}" ignore missing %}',
        '{% include ["nope.html", "{secret}"] ignore missing %}',
        '{% include ["nope.html", "../secret.txt"] ignore missing %}',
        '{% import "../secret.txt" as s %}',
    ],
)
def test_the_snapshot_keeps_nothing_from_outside_the_folder(folder: Path, include: str) -> None:
    secret = str(folder.parent / "secret.txt")
    _step(folder, include.replace("{secret}", secret))
    files = used_templates(_journey(), folder, "en")
    assert set(files) == {"step.html", "layout.html"}
    assert all(_SECRET not in text for text in files.values())
    try:
        mail = SnapshotRenderer(files, "en").render("step", "low", "en", {})
    except TemplateError as exc:
        assert "template not found" in str(exc)
    else:
        assert _SECRET not in mail.subject + mail.html


def test_the_snapshot_does_not_read_a_device_a_fifo_or_an_impossible_name(folder: Path) -> None:
    (folder / "zero.html").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.html")
    (folder / "layouts").mkdir()
    (folder / STYLESHEET).symlink_to("/dev/zero")
    (folder / "big.html").write_text("x" * (MAX_SOURCE_CHARS + 1), "utf-8")
    includes = ["/dev/zero", "zero.html", "fifo.html", "big.html", "a\x00b", "a\ud800b"]
    _step(folder, "".join(f"{{% include {name!r} ignore missing %}}" for name in includes))
    files = used_templates(_journey(), folder, "en")
    assert set(files) == {"step.html", "layout.html"}


def test_a_layout_symlinked_to_a_device_is_not_in_the_snapshot(folder: Path) -> None:
    (folder / "layout.html").unlink()
    (folder / "layout.html").symlink_to("/dev/zero")
    _step(folder, "x")
    assert set(used_templates(_journey(), folder, "en")) == {"step.html"}


@pytest.mark.parametrize(
    "expression",
    ["'a'" + "|lower" * 5000, "x" + ".x" * 5000, "1" + " + 1" * 20000],
    ids=["filters", "lookups", "terms"],
)
def test_a_template_whose_tree_cannot_be_walked_is_kept_without_references(
    folder: Path, expression: str
) -> None:
    _step(folder, f"{{{{ {expression} }}}}")
    files = used_templates(_journey(), folder, "en")
    assert "step.html" in files
