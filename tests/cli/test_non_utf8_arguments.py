"""An argument that is not UTF-8 (a Latin-1 byte from a shell or a pasted file name, which
Python hands over as a lone surrogate) is one line naming the argument, exit 2, before anything
is written; it was a UnicodeEncodeError traceback from the database driver or the terminal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.db.tables import suppressions, webhook_endpoints
from tests.support.cli import cli_installation, count, invoke

NOT_UTF8 = os.fsdecode(b"\xff")  # "\udcff", as argv carries the byte


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_installation(tmp_path)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["suppressions", "add", f"a{NOT_UTF8}@b.jp"], "EMAIL"),
        (["suppressions", "add", "a@b.jp", "--reason", NOT_UTF8], "--reason"),
        (["suppressions", "add", "a@b.jp", "--source", NOT_UTF8], "--source"),
        (["suppressions", "remove", f"a{NOT_UTF8}@b.jp"], "EMAIL"),
        (["suppressions", "list", "--reason", NOT_UTF8], "--reason"),
        (["consent", "export", "--customer", NOT_UTF8], "--customer"),
        (["users", "add", f"a{NOT_UTF8}@b.jp", "--role", "admin"], "EMAIL"),
        (["users", "disable", f"a{NOT_UTF8}@b.jp"], "EMAIL"),
        (["webhooks", "add", f"https://hooks.example.com/{NOT_UTF8}", "-e", "*"], "URL"),
        (["webhooks", "add", "https://hooks.example.com/", "-e", NOT_UTF8], "--event"),
        (
            ["webhooks", "add", "https://hooks.example.com/", "-e", "*", "--description", NOT_UTF8],
            "--description",
        ),
        (["sends", "settle", "1", "--as", "sent", "--note", NOT_UTF8], "--note"),
        (["tasks", "close", "1", "--reason", NOT_UTF8], "--reason"),
        (["send-test", "onboarding", "welcome", "--to", f"a{NOT_UTF8}@b.jp"], "--to"),
    ],
)
def test_an_argument_that_is_not_utf8_is_one_line_naming_it(
    env: dict[str, str], args: list[str], named: str
) -> None:
    code, lines = invoke({**env, "STEPMAIL_NEW_USER_PASSWORD": "a long enough one"}, *args)
    assert code == 2, lines
    assert lines == [f"error: {named}: not UTF-8 text"]
    assert count(env, suppressions) == count(env, webhook_endpoints) == 0
