"""``/v1/webhooks`` and ``stepmail webhooks``: subscribe, list, disable, read the log, replay;
every refusal names its field (API) or is one line with exit code 2 or 3 (CLI)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.runtime import Runtime
from orchestrator.services.webhooks import deliver_due
from orchestrator.settings import Settings
from tests.support.environment import FixedDraw, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, post_events
from tests.support.webhook_receiver import webhook_receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def cli_env(settings: Settings) -> dict[str, str]:
    return {"STEPMAIL_DATABASE_URL": settings.database_url}


def deliver_all(runtime: Runtime) -> int:
    with httpx.Client(trust_env=False) as http, ThreadPoolExecutor(2) as pool:
        return deliver_due(
            runtime.engine,
            http,
            rules=runtime.outgoing_webhook_rules(),
            clock=runtime.clock,
            jitter=FixedDraw(),
            pool=pool,
        )


def test_the_api_subscribes_and_a_tracked_event_opens_a_task_that_is_delivered(
    client: TestClient, runtime: Runtime
) -> None:
    with webhook_receiver() as receiver:
        created = client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["task.opened", "enrollment.exited"]},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        assert created.json()["secret"].startswith("whsec_")
        listed = client.get("/v1/webhooks", headers=AUTH).json()
        assert listed == [
            {
                "id": created.json()["id"],
                "url": receiver.url,
                "events": ["enrollment.exited", "task.opened"],
                "enabled": True,
                "description": "",
            }
        ]
        assert "secret" not in listed[0]

        post_signup(client, signup_payload("bigco", annual_contract_value=3_600_000))
        tracked = post_events(
            client, {"external_id": "bigco", "name": "nps_submitted", "properties": {"score": 2}}
        )
        assert tracked.status_code in (200, 201, 202), tracked.text
        assert deliver_all(runtime) >= 1
        types = [json.loads(body)["type"] for body in receiver.bodies()]
        assert "task.opened" in types
        opened = next(json.loads(b) for b in receiver.bodies() if b"task.opened" in b)
        assert opened["data"]["customer_id"] == "bigco"

        log = client.get("/v1/webhooks/deliveries", headers=AUTH)
        assert log.status_code == 200
        assert log.json()[0]["state"] == "delivered"
        replay = client.post(f"/v1/webhooks/deliveries/{log.json()[0]['id']}/replay", headers=AUTH)
        assert replay.json()["replayed"] is True
        endpoint_id = created.json()["id"]
        disabled = client.post(f"/v1/webhooks/{endpoint_id}/disable", headers=AUTH)
        assert disabled.json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x.example/", "events": ["*"]}, "url"),
        ({"url": "https://x.example/", "events": ["mail.opened"]}, "events"),
        ({"url": "https://x.example/", "events": []}, "events"),
        ({"url": "https://user:pw@x.example/", "events": ["*"]}, "url"),
        ({"url": "https://x.example/\u0000", "events": ["*"]}, "url"),
    ],
)
def test_a_bad_subscription_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    answer = client.post("/v1/webhooks", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][:2] == ["body", field]
    assert client.get("/v1/webhooks", headers=AUTH).json() == []


def test_unknown_ids_are_404s(client: TestClient) -> None:
    assert client.post("/v1/webhooks/77/disable", headers=AUTH).status_code == 404
    assert client.post("/v1/webhooks/deliveries/77/replay", headers=AUTH).status_code == 404
    assert client.get("/v1/webhooks").status_code == 401


def test_the_cli_manages_endpoints_with_json_output(settings: Settings, runtime: Runtime) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    added = runner.invoke(
        app,
        [
            "webhooks",
            "add",
            "https://hooks.example.com/in",
            "-e",
            "mail.sent,task.opened",
            "--json",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.stdout)
    assert endpoint["events"] == ["mail.sent", "task.opened"]
    assert endpoint["secret"].startswith("whsec_")

    listed = runner.invoke(app, ["webhooks", "list", "--json"], env=env)
    assert json.loads(listed.stdout)[0]["url"] == "https://hooks.example.com/in"
    text = runner.invoke(app, ["webhooks", "list"], env=env)
    assert "#1  enabled  https://hooks.example.com/in" in text.stdout

    assert (
        json.loads(runner.invoke(app, ["webhooks", "deliveries", "--json"], env=env).stdout) == []
    )
    disabled = runner.invoke(app, ["webhooks", "disable", "1", "--json"], env=env)
    assert json.loads(disabled.stdout)["enabled"] is False

    missing = runner.invoke(app, ["webhooks", "replay", "42"], env=env)
    assert missing.exit_code == 3
    assert missing.stdout == ""
    assert "no webhook message 42" in missing.stderr and "Traceback" not in missing.output
    bad = runner.invoke(app, ["webhooks", "add", "https://x.example/", "-e", "nope"], env=env)
    assert bad.exit_code == 2 and "unknown event 'nope'" in bad.stderr
    wrong_state = runner.invoke(app, ["webhooks", "deliveries", "--state", "lost"], env=env)
    assert wrong_state.exit_code == 2 and "--state must be one of" in wrong_state.stderr
