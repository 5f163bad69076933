"""What operators expect of every ``stepmail`` command: ``--json`` on each list prints one
JSON document on stdout and nothing else; notes such as "no tasks" go to stderr, so a pipe
gets only results; ``--quiet`` silences them; errors are one line on stderr."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import STANDARD_JOURNEYS
from tests.support.signups import post_signup, signup_payload

runner = CliRunner()


@pytest.fixture(autouse=True)
def keep_log_level() -> object:
    """``--quiet``/``--verbose`` set STEPMAIL_LOG_LEVEL for the processes a command starts."""
    before = os.environ.get("STEPMAIL_LOG_LEVEL")
    yield None
    if before is None:
        os.environ.pop("STEPMAIL_LOG_LEVEL", None)
    else:
        os.environ["STEPMAIL_LOG_LEVEL"] = before


def env(settings: Settings) -> dict[str, str]:
    return {
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_JOURNEYS_DIR": str(STANDARD_JOURNEYS),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
    }


def json_of(settings: Settings, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"], env=env(settings))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_every_list_command_prints_json(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    post_signup(client, signup_payload("c1"))
    runner.invoke(app, ["suppressions", "add", "gone@example.com"], env=env(settings))
    with runtime.engine.begin() as connection:
        connection.execute(update(scheduled_sends).values(state="unknown"))

    [suppressed] = json_of(settings, "suppressions", "list")
    assert suppressed["email"] == "gone@example.com"
    assert suppressed["created_at"].startswith("20")
    unknown = json_of(settings, "sends", "unknown")
    assert isinstance(unknown, list) and unknown[0]["journey_id"] == "onboarding"
    assert json_of(settings, "tasks", "list", "--status", "all") == []
    assert json_of(settings, "webhooks", "list") == []
    assert json_of(settings, "webhooks", "deliveries") == []
    simulation = json_of(settings, "simulate", "onboarding", "--tier", "low", "--days", "3")
    timeline = simulation["timeline"]  # the documented stepmail.simulation/1 document
    assert isinstance(timeline, list) and {"day", "at", "kind", "what"} <= set(timeline[0])
    paths = json_of(settings, "preview", "onboarding", "welcome", "--out", str(settings.outbox_dir))
    assert isinstance(paths, list) and len(paths) == 2


def test_an_empty_list_says_so_on_stderr_and_quiet_silences_it(settings: Settings) -> None:
    for command in (["tasks", "list"], ["suppressions", "list"], ["sends", "unknown"]):
        result = runner.invoke(app, command, env=env(settings))
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr.startswith("no ")
        quiet = runner.invoke(app, ["--quiet", *command], env=env(settings))
        assert quiet.exit_code == 0 and quiet.output == ""


def test_quiet_and_verbose_set_the_log_level_and_exclude_each_other(settings: Settings) -> None:
    runner.invoke(app, ["-v", "tasks", "list"], env=env(settings))
    assert os.environ["STEPMAIL_LOG_LEVEL"] == "DEBUG"
    runner.invoke(app, ["-q", "tasks", "list"], env=env(settings))
    assert os.environ["STEPMAIL_LOG_LEVEL"] == "WARNING"
    both = runner.invoke(app, ["-q", "-v", "tasks", "list"], env=env(settings))
    assert both.exit_code == 2
    assert both.stderr == "error: --quiet and --verbose: choose one\n"


def test_an_unknown_tier_is_a_usage_error_not_a_traceback(settings: Settings) -> None:
    for command in (["simulate", "onboarding"], ["preview", "onboarding", "welcome"]):
        result = runner.invoke(app, [*command, "--tier", "gold"], env=env(settings))
        assert result.exit_code == 2, result.output
        said = " ".join(result.stderr.replace("│", " ").split())  # click's box, unwrapped
        assert "--tier must be one of high, low, tech, not 'gold'" in said
        assert "Traceback" not in result.output
