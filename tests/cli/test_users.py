"""``stepmail users``: add, list and disable console users from a shell or a script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app as cli_app
from orchestrator.db.migrate import upgrade

PASSWORD = "correct horse battery staple"


# -- stepmail users --------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    return {"STEPMAIL_DATABASE_URL": url, "STEPMAIL_NEW_USER_PASSWORD": PASSWORD}


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["users", *args], env=env)
    return result.exit_code, result.output


def test_the_cli_adds_lists_and_disables_users(cli_env: dict[str, str]) -> None:
    assert cli(cli_env, "add", "Admin@Acme.example", "--role", "admin") == (
        0,
        "added admin@acme.example (admin)\n",
    )
    code, output = cli(cli_env, "list", "--json")
    assert code == 0
    listed = json.loads(output)
    assert [(u["email"], u["role"], u["disabled_at"]) for u in listed] == [
        ("admin@acme.example", "admin", None)
    ]
    assert cli(cli_env, "disable", "admin@acme.example") == (0, "disabled admin@acme.example\n")
    code, output = cli(cli_env, "list")
    assert code == 0 and "\tdisabled " in output


def test_the_cli_names_what_is_wrong(cli_env: dict[str, str]) -> None:
    code, output = cli(cli_env, "add", "x@acme.example", "--role", "owner")
    assert code == 2 and "owner" in output  # click's usage error
    code, output = cli(
        {**cli_env, "STEPMAIL_NEW_USER_PASSWORD": ""}, "add", "x@acme.example", "--role", "admin"
    )
    assert code == 2
    assert "STEPMAIL_NEW_USER_PASSWORD: is unset and there is no terminal" in output
    code, output = cli(
        {**cli_env, "STEPMAIL_NEW_USER_PASSWORD": "short"},
        "add",
        "x@acme.example",
        "--role",
        "admin",
    )
    assert code == 2 and "password: must have at least 12 characters" in output
    code, output = cli(cli_env, "disable", "nobody@acme.example")
    assert code == 3 and "no console user 'nobody@acme.example'" in output
    assert "is not a Stepmail setting" not in output  # the password variable is known
