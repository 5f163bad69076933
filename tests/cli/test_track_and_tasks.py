"""``stepmail track`` and ``stepmail tasks list|close``: usage and CSM tasks from the
command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.handoff import handoff_settings, high_touch
from tests.support.signups import post_signup
from tests.support.usage import AUTH
from tests.support.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str, slack: Receiver) -> Settings:
    return handoff_settings(tmp_path, database_url, slack)


def test_the_cli_tracks_lists_and_closes(
    client: TestClient, runtime: Runtime, settings: Settings, slack: Receiver
) -> None:
    post_signup(client, high_touch("bigco"))
    env = {
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
    }
    runner = CliRunner()
    tracked = runner.invoke(
        app, ["track", "bigco", "nps_submitted", "--prop", "score=4", "--id", "cli-1"], env=env
    )
    assert tracked.exit_code == 0, tracked.output
    assert "stored" in tracked.output
    again = runner.invoke(app, ["track", "bigco", "nps_submitted", "--id", "cli-1"], env=env)
    assert "already stored" in again.output
    unknown = runner.invoke(app, ["track", "nobody", "login"], env=env)
    assert unknown.exit_code == 3 and "nobody" in unknown.output

    listed = runner.invoke(app, ["tasks", "list"], env=env)
    assert listed.exit_code == 0 and "nps_detractor" in listed.output
    task_id = client.get("/v1/tasks", headers=AUTH).json()["items"][0]["id"]
    closed = runner.invoke(app, ["tasks", "close", str(task_id)], env=env)
    assert closed.exit_code == 0 and f"task {task_id} closed" in closed.output
    missing = runner.invoke(app, ["tasks", "close", "9999"], env=env)
    assert missing.exit_code == 3 and "no task 9999" in missing.output
