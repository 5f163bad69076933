"""``stepmail suppressions list|add|remove``: operators edit the suppression list."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app as cli_app
from orchestrator.db.migrate import upgrade


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    return {"STEPMAIL_DATABASE_URL": url}


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["suppressions", *args], env=env)
    return result.exit_code, result.output


def test_the_cli_adds_lists_and_removes(cli_env: dict[str, str]) -> None:
    assert cli(cli_env, "list") == (0, "no suppressed addresses\n")
    assert cli(cli_env, "add", "Jane@Example.com", "--reason", "legal") == (
        0,
        "suppressed jane@example.com (legal)\n",
    )
    assert cli(cli_env, "add", "jane@example.com") == (
        0,
        "jane@example.com was already suppressed (legal)\n",
    )
    code, output = cli(cli_env, "list")
    assert code == 0
    assert output.startswith("jane@example.com\tlegal\tcli\t")
    assert cli(cli_env, "remove", "jane@example.com") == (0, "removed jane@example.com\n")


def test_the_cli_names_what_is_wrong(cli_env: dict[str, str]) -> None:
    code, output = cli(cli_env, "add", "not-an-address")
    assert code == 2
    assert "EMAIL: not a valid address: 'not-an-address'" in output
    code, output = cli(cli_env, "remove", "nobody@example.com")
    assert code == 3
    assert "nobody@example.com is not suppressed" in output
