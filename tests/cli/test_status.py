"""``stepmail status`` (text and ``--json``) on a real database and Redis, and what a command
says when a server is missing: one ``error:`` line naming the setting, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import require_server
from tests.support.signups import post_signup, signup_payload

runner = CliRunner()


def env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"STEPMAIL_DATABASE_URL": settings.database_url, "STEPMAIL_REDIS_URL": "", **extra}


def test_status_counts_what_the_database_holds(
    client: TestClient, runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    for n in range(3):
        post_signup(client, signup_payload(f"c{n}"))
    redis_url = require_server("STEPMAIL_TEST_REDIS_URL")

    result = runner.invoke(
        app, ["status", "--json"], env=env(settings, STEPMAIL_REDIS_URL=redis_url)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["send_states"]["pending"] >= 3
    assert report["due"] >= 3  # the welcome mails: due at signup, and the real clock is later
    assert report["due_lag_seconds"] > 0
    assert report["redis"] == "ok"
    assert report["schema"]["up_to_date"] is True
    assert report["unknown_sends"] == 0 and report["problems"] == []
    assert report["webhooks"] == {"waiting": 0, "failed": 0}

    text = runner.invoke(app, ["status"], env=env(settings))
    assert text.exit_code == 0
    assert "redis        not configured" in text.stdout
    assert "schema" in text.stdout and "up to date" in text.stdout


def test_status_exits_1_naming_what_needs_an_operator(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    with runtime.engine.begin() as connection:
        connection.execute(update(scheduled_sends).values(state="unknown"))
    unreachable = "redis://127.0.0.1:9/0"
    result = runner.invoke(
        app, ["status", "--json"], env=env(settings, STEPMAIL_REDIS_URL=unreachable)
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["unknown_sends"] >= 1
    assert report["redis"].startswith("unreachable")
    assert any("unknown" in p for p in report["problems"])
    text = runner.invoke(app, ["status"], env=env(settings, STEPMAIL_REDIS_URL=unreachable))
    assert text.exit_code == 1 and "attention: Redis unreachable" in text.stderr


def test_an_unmigrated_database_is_named_with_the_fix(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()  # there, with no tables (none: test_hostile_cli)
    empty = {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "STEPMAIL_REDIS_URL": "",
    }
    result = runner.invoke(app, ["status"], env=empty)
    assert result.exit_code == 1
    assert "schema       none" in result.stdout
    assert "stepmail db upgrade" in result.stderr
    listed = runner.invoke(app, ["tasks", "list"], env=empty)
    assert listed.exit_code == 78
    assert listed.stderr.count("\n") == 1 and "run `stepmail db upgrade`" in listed.stderr
    assert "Traceback" not in listed.output


def test_a_database_that_does_not_answer_is_one_line_and_exit_69() -> None:
    down = {"STEPMAIL_DATABASE_URL": "postgresql://stepmail:hunter2@127.0.0.1:9/none"}
    for command in (["status"], ["tasks", "list"], ["webhooks", "list", "--json"]):
        result = runner.invoke(app, command, env=down)
        assert result.exit_code == 69, (command, result.output)
        assert result.stdout == ""
        assert result.stderr.startswith("error: database unreachable (STEPMAIL_DATABASE_URL)")
        assert result.stderr.count("\n") == 1
        assert "hunter2" not in result.output


def test_a_database_behind_the_code_is_reported_not_refused(tmp_path: Path) -> None:
    """An upgrade's first step: the new code reads an old schema (before the webhooks' tables)
    and says what to run, with the counts it can read."""
    from orchestrator.db.migrate import head_revisions, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    result = runner.invoke(
        app, ["status", "--json"], env={"STEPMAIL_DATABASE_URL": url, "STEPMAIL_REDIS_URL": ""}
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    head = sorted(head_revisions())  # this release's, whatever migration is the latest
    assert report["schema"] == {"current": ["0004"], "head": head, "up_to_date": False}
    assert report["webhooks"] == {}
    assert report["send_states"]["pending"] == 0
    assert any("stepmail db upgrade" in problem for problem in report["problems"])
