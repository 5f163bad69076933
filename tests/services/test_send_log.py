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
