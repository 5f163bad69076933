"""``/metrics`` after real work on the real servers: signups make due rows (the backlog and its
age), a tick with the worker's code sends them (sends by outcome, transport, journey and step;
render and transport latency), a detractor's NPS opens a task, the health job runs, and the
send queue's depth is read from Redis as Dramatiq keeps it. Parsed with Prometheus' parser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.scheduling.broker import BrokerDispatcher, make_broker
from orchestrator.services.health import run_daily_now
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.delivery import run_due
from tests.support.environment import FixedDraw, make_settings, require_server
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, post_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        api_key=API_KEY,
        redis_url=require_server("STEPMAIL_TEST_REDIS_URL"),
        queue_name=f"metrics-test-{os.getpid()}-{tmp_path.name}",
    )


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    built = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    yield built
    make_broker(settings).flush(settings.queue_name)
    built.close()


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_after_real_sends(
    client: TestClient, runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    sent_before = counter(
        "stepmail_sends_total",
        outcome="sent",
        transport="outbox",
        journey="onboarding",
        step="welcome",
    )
    tasks_before = counter("stepmail_tasks_opened_total", kind="nps_detractor")
    runs_before = counter("stepmail_health_job_runs_total", outcome="ok")
    renders_before = counter("stepmail_render_duration_seconds_count")
    handed_before = counter(
        "stepmail_transport_duration_seconds_count", transport="outbox", outcome="ok"
    )
    signups_before = counter("stepmail_request_group_size_sum", kind="signup")
    events_before = counter("stepmail_request_group_size_sum", kind="event")

    for n in range(3):
        post_signup(client, signup_payload(f"c{n}"))
    assert run_due(runtime) == ["sent"] * 3
    post_signup(client, signup_payload("big", annual_contract_value=3_600_000))
    post_events(client, {"external_id": "big", "name": "nps_submitted", "properties": {"score": 1}})
    run_daily_now(runtime.engine, rules=runtime.usage_rules(), clock=clock, notify=lambda _: 0)
    clock.advance(timedelta(minutes=5))  # the big customer's welcome has waited five minutes
    BrokerDispatcher(make_broker(settings), settings.queue_name, 10).dispatch([1, 2])

    metrics = scrape(client)

    def value(name: str, **labels: str) -> float:
        return metrics.get((name, frozenset(labels.items())), 0.0)

    assert (
        value(
            "stepmail_sends_total",
            outcome="sent",
            transport="outbox",
            journey="onboarding",
            step="welcome",
        )
        == sent_before + 3
    )
    assert counter("stepmail_render_duration_seconds_count") >= renders_before + 3
    handed = value("stepmail_transport_duration_seconds_count", transport="outbox", outcome="ok")
    assert handed == handed_before + 3  # one observation a mail
    assert value("stepmail_tasks_opened_total", kind="nps_detractor") == tasks_before + 1
    assert value("stepmail_health_job_runs_total", outcome="ok") == runs_before + 1
    assert value("stepmail_request_group_size_sum", kind="signup") == signups_before + 4
    assert value("stepmail_request_group_size_sum", kind="event") == events_before + 1
    assert value("stepmail_due_sends") == 1
    assert value("stepmail_oldest_due_age_seconds") == 300
    assert value("stepmail_queue_waiting") == 1
    assert value("stepmail_queue_messages") == 1
    assert value("stepmail_queue_dead_letters") == 0
    assert value("stepmail_webhook_outbox_pending") == 0
    routes = {
        dict(labels).get("route")
        for (name, labels) in metrics
        if name == "stepmail_http_requests_total"
    }
    assert {"/hooks/signup", "/v1/events"} <= routes


def test_redis_down_leaves_the_database_gauges(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, redis_url="redis://127.0.0.1:9/0")
    runtime = build_runtime(settings, transport=OutboxTransport(settings.outbox_dir))
    try:
        with TestClient(create_app(runtime)) as client:
            names = {name for name, _ in scrape(client)}
    finally:
        runtime.close()
    assert "stepmail_due_sends" in names
    assert "stepmail_queue_waiting" not in names
