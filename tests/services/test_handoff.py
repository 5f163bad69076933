"""The hand-off to a human: at-risk signals on high-touch customers open CSM tasks, and the CSM
hears about them by mail and Slack."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import START, make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

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


def task_mails(settings: Settings) -> list[email.message.EmailMessage]:
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in outbox_files(settings)
    ]
    return [m for m in mails if str(m["Subject"]).startswith("[Stepmail] Task")]


def test_a_detractor_nps_on_a_high_touch_customer_notifies_the_csm(
    client: TestClient, runtime: Runtime, settings: Settings, slack: SlackServer
) -> None:
    post_signup(client, high_touch("bigco"))
    response = post_events(client, event("bigco", "nps_submitted", properties={"score": 3}))
    assert response.status_code == 202

    tasks = client.get("/v1/tasks", headers=AUTH).json()["items"]
    kinds = sorted(task["kind"] for task in tasks)
    assert kinds == ["health_at_risk", "nps_detractor"]  # the score also fell under 50
    assert all(task["assignee"] == CSM["csm_email"] and task["notified_at"] for task in tasks)
    mails = task_mails(settings)
    assert len(mails) == 2 and all(str(m["To"]) == CSM["csm_email"] for m in mails)
    detractor = next(t for t in tasks if t["kind"] == "nps_detractor")
    assert "score=3" in detractor["reason"]
    assert len(slack.received) == 2
    assert any("nps_detractor" in post["text"] for post in slack.received)


def test_a_promoter_or_a_low_touch_detractor_opens_no_signal_task(
    client: TestClient, runtime: Runtime
) -> None:
    post_signup(client, high_touch("fan"))
    post_signup(client, signup_payload("small"))
    post_events(
        client,
        event("fan", "nps_submitted", properties={"score": 9}),
        event("small", "nps_submitted", properties={"score": 2}),
    )
    kinds = [t["kind"] for t in client.get("/v1/tasks", headers=AUTH).json()["items"]]
    assert "nps_detractor" not in kinds


def test_without_a_csm_the_team_address_gets_the_mail(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    payload = high_touch("orphan")
    del payload["csm_name"], payload["csm_email"]
    post_signup(client, payload)
    post_events(client, event("orphan", "nps_submitted", properties={"score": 1}))
    assert {str(m["To"]) for m in task_mails(settings)} == {"cs-team@vendor.example"}


def test_one_open_task_per_kind_and_tasks_close(client: TestClient, runtime: Runtime) -> None:
    post_signup(client, high_touch("bigco"))
    for i in range(3):
        post_events(client, event("bigco", "nps_submitted", id=f"n{i}", properties={"score": 2}))
    open_tasks = client.get("/v1/tasks", headers=AUTH).json()["items"]
    detractor = [t for t in open_tasks if t["kind"] == "nps_detractor"]
    assert len(detractor) == 1

    closed = client.post(f"/v1/tasks/{detractor[0]['id']}/close", headers=AUTH)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (
        client.get("/v1/tasks?status=closed", headers=AUTH).json()["items"][0]["id"]
        == closed.json()["id"]
    )
    assert client.post("/v1/tasks/9999/close", headers=AUTH).status_code == 404
    assert client.get("/v1/tasks").status_code == 401
