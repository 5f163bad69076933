"""The operator's routes and what every request leaves behind: ``/healthz`` reads nothing,
``/readyz`` names what fails, every answer carries a request id (the caller's when sane), the
access line and the metrics name the route template, never a capability token."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.api.app import create_app
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.observability.logging import configure_logging
from orchestrator.runtime import Runtime, build_runtime
from tests.support.environment import make_settings

TOKEN = "Zx9.capability-token-never-logged"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    yield stream
    logging.getLogger().handlers.clear()


def _samples(body: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


def test_healthz_answers_without_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)  # the runtime starts on a database (it brings journey versions up to date)
    runtime = build_runtime(make_settings(tmp_path, url))
    runtime.engine.dispose()  # then the database goes away: port 9, nothing listens
    runtime.engine = make_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    with TestClient(create_app(runtime)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    runtime.close()
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("not ready: database unreachable")
    assert ready.json()["checks"]["redis"] == "not configured"


def test_readyz_is_200_when_the_database_answers(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "not configured"},
    }


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-123_abc:4.5", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id with spaces", False),
        ("evil\u00e9", False),
        ("", False),
    ],
)
def test_the_request_id_is_the_callers_only_when_sane(
    client: TestClient, given: str, kept: bool
) -> None:
    headers = {"X-Request-Id": given.encode("utf-8")} if given else {}
    echoed = client.get("/healthz", headers=headers).headers["x-request-id"]
    if kept:
        assert echoed == given
    else:
        assert echoed != given
        assert len(echoed) == 32


def test_every_line_of_a_request_carries_its_id(
    client: TestClient, log_output: io.StringIO
) -> None:
    client.get("/healthz", headers={"X-Request-Id": "trace-42"})
    client.post(f"/unsubscribe/{TOKEN}", content=b"List-Unsubscribe=One-Click")
    lines = log_output.getvalue().splitlines()
    health = [line for line in lines if "GET /healthz 200" in line]
    assert health and all("[trace-42]" in line for line in health), lines
    assert any("POST /unsubscribe/[redacted]" in line for line in lines), lines
    assert TOKEN not in log_output.getvalue()


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get(f"/unsubscribe/{TOKEN}")
    client.get("/no/such/path/" + "x" * 50)
    body = client.get("/metrics").text
    assert TOKEN not in body
    routes = {labels["route"] for labels, _ in _samples(body, "stepmail_http_requests_total")}
    assert "/unsubscribe/{token}" in routes
    assert "unmatched" in routes
    assert not any("no/such" in route for route in routes)
    assert _samples(body, "stepmail_due_sends") == [({}, 0.0)]
    assert _samples(body, "stepmail_oldest_due_age_seconds") == [({}, 0.0)]


def test_metrics_token_guards_the_scrape(tmp_path: Path, database_url: str) -> None:
    runtime: Runtime = build_runtime(
        make_settings(tmp_path, database_url, metrics_token="scrape-secret")
    )
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer scrape-secret"}
        assert client.get("/metrics", headers=right).status_code == 200
    runtime.close()


def test_console_routes_are_counted_under_their_mount(client: TestClient) -> None:
    """The console is a mounted app: its route templates keep the /console prefix, so they
    never mix with the API's own (/tasks/{task_id} is not /v1/tasks/...)."""
    client.get("/console/login")
    client.get("/console/tasks/5", follow_redirects=False)
    routes = {
        labels["route"]
        for labels, _ in _samples(client.get("/metrics").text, "stepmail_http_requests_total")
    }
    assert {"/console/login", "/console/tasks/{task_id}"} <= routes
    assert "/login" not in routes and "/tasks/{task_id}" not in routes
