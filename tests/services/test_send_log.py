"""One log line per send outcome, with what an operator searches by (send id, journey, step,
tier, transport, provider id) and never the recipient's address or a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orchestrator.observability.logging import configure_logging
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import SECRET
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    yield stream
    logging.getLogger().handlers.clear()


def test_each_send_outcome_is_one_json_line_without_the_address(
    client: TestClient, runtime: Runtime, settings: Settings, json_log: io.StringIO
) -> None:
    runtime.transport = ScriptedTransport()
    for n in range(2):
        post_signup(client, signup_payload(f"cust-{n}", plan="free"))
    assert run_due(runtime) == ["sent", "sent"]

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    sends = [line for line in lines if "outcome" in line and "send_id" in line]
    assert len(sends) == 2
    for line in sends:
        assert line["outcome"] == "sent"
        assert line["journey"] == "onboarding" and line["step"] == "welcome"
        assert line["tier"] in ("high", "low", "tech")
        assert line["transport"] == runtime.transport.name
        assert line["provider_id"]
        assert line["message"].startswith(f"send {line['send_id']} sent: journey=onboarding")
    everything = json_log.getvalue()
    assert "customer.example" not in everything
    assert SECRET not in everything


def test_no_outgoing_url_reaches_the_log(runtime: Runtime, json_log: io.StringIO) -> None:
    """A Slack or integrator webhook URL carries its secret in the path; httpx would log it
    on every request at INFO."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from orchestrator.services.webhooks import add_endpoint, deliver_due
    from orchestrator.webhooks.outbox import emit
    from tests.support.environment import FixedDraw
    from tests.support.webhook_receiver import webhook_receiver

    with webhook_receiver() as receiver:
        secret_url = receiver.url + "/T0000/B0000/path-secret-XYZ"
        rules = runtime.outgoing_webhook_rules()
        add_endpoint(runtime.engine, secret_url, ["task.opened"], rules=rules, clock=runtime.clock)
        with runtime.engine.begin() as connection:
            emit(connection, "task.opened", {"task_id": 1}, runtime.clock.now())
        with httpx.Client() as http, ThreadPoolExecutor(1) as pool:
            assert deliver_due(
                runtime.engine,
                http,
                rules=rules,
                clock=runtime.clock,
                jitter=FixedDraw(),
                pool=pool,
            )
        httpx.get(receiver.url + "/another-path-secret-XYZ")
    assert len(receiver.received) == 1
    logged = json_log.getvalue()
    assert "webhook message 1 (task.opened) to endpoint 1: delivered" in logged
    assert "path-secret-XYZ" not in logged
