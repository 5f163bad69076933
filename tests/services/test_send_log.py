"""One log line per send outcome an operator acts on and one a batch counting them all (a sent
mail's own line is DEBUG), with what an operator searches by (send id, journey, step, tier,
transport, provider id) and never the recipient's address or a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.delivery.send_log import report_batch
from orchestrator.errors import TransientDeliveryError
from orchestrator.journeys.decide import Claim
from orchestrator.observability.logging import configure_logging
from orchestrator.runtime import Runtime
from tests.support.delivery import run_due
from tests.support.environment import SECRET
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport


def json_log_at(level: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(level, "json", stream)
    yield stream
    logging.getLogger().handlers.clear()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    yield from json_log_at("INFO")


@pytest.fixture
def debug_json_log() -> Iterator[io.StringIO]:
    yield from json_log_at("DEBUG")


def _lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def _enrol_two(client: TestClient, runtime: Runtime) -> None:
    for n in range(2):
        post_signup(client, signup_payload(f"cust-{n}", plan="free"))


def test_a_sent_mail_is_one_debug_line_without_the_address(
    client: TestClient, runtime: Runtime, debug_json_log: io.StringIO
) -> None:
    runtime.transport = ScriptedTransport()
    _enrol_two(client, runtime)
    assert run_due(runtime) == ["sent", "sent"]

    sends = [line for line in _lines(debug_json_log) if "send_id" in line]
    assert len(sends) == 2
    for line in sends:
        assert line["level"] == "DEBUG" and line["outcome"] == "sent"
        assert line["journey"] == "onboarding" and line["step"] == "welcome"
        assert line["tier"] in ("high", "low", "tech")
        assert line["transport"] == runtime.transport.name
        assert line["provider_id"]
        assert line["message"].startswith(f"send {line['send_id']} sent: journey=onboarding")
    everything = debug_json_log.getvalue()
    assert "customer.example" not in everything
    assert SECRET not in everything


def test_at_info_sent_mails_are_counted_by_their_batch_line(
    client: TestClient, runtime: Runtime, json_log: io.StringIO
) -> None:
    """A mail sent is the outcome nobody acts on: one line a batch counts them, and a line
    through logging costs more CPU than any other step of a mail but rendering."""
    runtime.transport = ScriptedTransport()
    _enrol_two(client, runtime)
    assert run_due(runtime) == ["sent", "sent"]

    lines = _lines(json_log)
    assert not [line for line in lines if "send_id" in line]
    batches = [line for line in lines if "outcomes" in line]
    assert batches and all(line["level"] == "INFO" for line in batches)
    assert sum(line["outcomes"]["sent"] for line in batches) == 2
    assert sum(line["sends"] for line in batches) == 2
    assert all(line["transport"] == runtime.transport.name for line in batches)
    assert all(
        line["message"] == f"batch of {line['sends']} sends: {line['sends']} sent "
        f"(transport={runtime.transport.name})"
        for line in batches
    )
    assert "customer.example" not in json_log.getvalue()


def test_an_outcome_to_act_on_is_still_one_info_line_a_send(
    client: TestClient, runtime: Runtime, json_log: io.StringIO
) -> None:
    runtime.transport = ScriptedTransport(TransientDeliveryError("451 try later"))
    post_signup(client, signup_payload("cust-retry", plan="free"))
    assert run_due(runtime) == ["pending"]  # a retry, due again later

    lines = _lines(json_log)
    (retry,) = [line for line in lines if line.get("outcome") == "pending"]
    assert retry["level"] == "INFO" and retry["step"] == "welcome"
    assert retry["message"].startswith(f"send {retry['send_id']} pending: journey=")
    (batch,) = [line for line in lines if "outcomes" in line]
    assert batch["outcomes"] == {"pending": 1}
    assert batch["message"] == "batch of 1 sends: 1 pending (transport=scripted)"


def test_the_batch_line_counts_only_the_sends_it_dealt_with(json_log: io.StringIO) -> None:
    """A row taken back by another worker (``ignored``) is neither logged nor counted: the
    line's number of sends is the sum of the outcomes it lists."""
    at = datetime(2026, 12, 2, tzinfo=UTC)
    claims = [Claim(n, n, n, "onboarding", "welcome", at, 1) for n in (1, 2, 3)]
    outcomes = {1: "sent", 2: "ignored", 3: "sent"}
    report_batch(claims, outcomes, dict.fromkeys((1, 2, 3), "low"), {}, "scripted")

    (batch,) = [line for line in _lines(json_log) if "outcomes" in line]
    assert batch["sends"] == 2 and batch["outcomes"] == {"sent": 2}
    assert batch["message"] == "batch of 2 sends: 2 sent (transport=scripted)"


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
