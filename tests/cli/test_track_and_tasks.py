"""``stepmail track`` and ``stepmail tasks list|close``: usage and CSM tasks from the
command line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH

CSM = {"csm_name": "Hanako Sato", "csm_email": "hanako@vendor.example"}


class SlackServer:
    """A local incoming-webhook endpoint that records what it receives."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXX"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlackServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, slack: SlackServer) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        api_key=API_KEY,
        slack_webhook_url=slack.url,
        csm_team_email="cs-team@vendor.example",
    )


def high_touch(external_id: str, **extra: Any) -> dict[str, Any]:
    signed_up = (START - timedelta(days=30)).isoformat()
    return signup_payload(
        external_id, annual_contract_value=3_600_000, signed_up_at=signed_up, **CSM, **extra
    )


def test_the_cli_tracks_lists_and_closes(
    client: TestClient, runtime: Runtime, settings: Settings, slack: SlackServer
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
