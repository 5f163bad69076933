"""Request bodies are capped while they stream in, and /v1 asks for its token before it reads a
byte: a 200 MB POST costs the process its route's limit plus one chunk, not 200 MB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from tests.support.environment import START
from tests.support.hostile import (
    AUTH,
    JSON,
    SIGNER,
    CountingBody,
    armed_client,
    armed_runtime,
    call_asgi,
    hostile_runtime,
    signup_raw,
    v1_raw,
)
from tests.support.signups import hook_time, signed_headers, signup_payload

__all__ = ["armed_client", "armed_runtime"]

CHUNK = 64 * 1024
SMALL, BATCH = 64 * 1024, 4 * 1024 * 1024  # the defaults
# Headers that pass what the hooks check before reading a body (fresh, well formed), signed
# over another body: the limit must hold for a caller who gets that far.
FORGED_SIGNUP = signed_headers(b"another body", timestamp=int(START.timestamp()))
FORGED_EVENTS = SIGNER.headers(b"another body", int(START.timestamp()))
ROUTES = [  # (method, path, extra headers, limit)
    ("POST", "/hooks/signup", FORGED_SIGNUP, SMALL),
    ("POST", "/hooks/sendgrid", FORGED_EVENTS, BATCH),
    ("POST", "/v1/events", AUTH, BATCH),
    ("POST", "/v1/suppressions", AUTH, SMALL),
    ("PATCH", "/v1/customers/a1", AUTH, SMALL),
    ("POST", "/unsubscribe/any-token/topics", {}, SMALL),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The limits act before any database work, so one SQLite app serves the ASGI-level tests
    (the tests through TestClient below run on both databases)."""
    tmp = tmp_path_factory.mktemp("limits")
    url = f"sqlite:///{tmp / 'stepmail.db'}"
    upgrade(url)
    runtime = hostile_runtime(tmp, url)
    yield create_app(runtime)
    runtime.close()


@pytest.mark.parametrize(("method", "path", "headers", "limit"), ROUTES)
def test_a_body_without_length_is_cut_off_after_its_limit_plus_one_chunk(
    app: FastAPI, method: str, path: str, headers: dict[str, str], limit: int
) -> None:
    body = CountingBody(CHUNK)  # no length: a chunked upload
    status, content = call_asgi(app, method, path, {**JSON, **headers}, body)

    assert status == 413
    assert body.pulled <= limit + CHUNK
    assert json.loads(content) == {"detail": f"request body is larger than {limit} bytes"}


@pytest.mark.parametrize(("method", "path", "headers", "limit"), ROUTES)
def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(
    app: FastAPI, method: str, path: str, headers: dict[str, str], limit: int
) -> None:
    body = CountingBody(CHUNK)
    length = {"Content-Length": str(200 * 1024 * 1024)}
    status, _ = call_asgi(app, method, path, {**JSON, **headers, **length}, body)

    assert status == 413
    assert body.pulled == 0


def test_a_length_that_lies_does_not_lift_the_limit(app: FastAPI) -> None:
    body = CountingBody(CHUNK)
    headers = {**JSON, **FORGED_SIGNUP, "Content-Length": "100"}
    status, _ = call_asgi(app, "POST", "/hooks/signup", headers, body)

    assert status == 413
    assert body.pulled <= SMALL + CHUNK


def test_an_absurd_length_is_refused_without_a_traceback(app: FastAPI) -> None:
    body = CountingBody(CHUNK)
    headers = {**JSON, "Content-Length": "9" * 5000}
    status, _ = call_asgi(app, "POST", "/hooks/signup", headers, body)

    assert status == 413
    assert body.pulled == 0


@pytest.mark.parametrize("path", ["/v1/suppressions", "/v1/events", "/v1/no-such-route"])
def test_v1_without_a_token_is_401_before_any_body_is_read(app: FastAPI, path: str) -> None:
    body = CountingBody(CHUNK)
    status, content = call_asgi(app, "POST", path, JSON, body)

    assert status == 401
    assert body.pulled == 0
    assert json.loads(content) == {"detail": "missing or wrong bearer token"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/suppressions", b"xx"),
        ("POST", "/v1/suppressions", b'{"email": 3}'),
        ("POST", "/v1/events", b"[[["),
        ("PATCH", "/v1/customers/a1", b'{"attributes": {"s": "\\ud800"}}'),
        ("POST", "/v1/tasks/9223372036854775808/close", b""),
    ],
)
def test_v1_with_a_bad_body_and_no_token_is_401_not_422(
    armed_client: TestClient, method: str, path: str, body: bytes
) -> None:
    response = armed_client.request(method, path, content=body, headers=JSON)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_wrong_token_is_refused_by_the_gate_too(armed_client: TestClient) -> None:
    headers = {**JSON, "Authorization": "Bearer nope"}
    response = armed_client.post("/v1/suppressions", content=b"xx", headers=headers)

    assert response.status_code == 401


def test_bodies_under_the_limit_go_through(armed_client: TestClient) -> None:
    """A batch of 1,000 events, each with some properties, fits the default batch limit."""
    events = [
        {
            "external_id": "nobody",
            "name": "report_created",
            "id": f"evt-{i:06d}-{'x' * 30}",
            "occurred_at": "2026-11-03T10:15:00+09:00",
            "properties": {"report_type": "approvals", "notes": "y" * 500},
        }
        for i in range(1000)
    ]
    body = json.dumps({"events": events}).encode()
    assert SMALL < len(body) < BATCH

    response = v1_raw(armed_client, "POST", "/v1/events", body)

    assert response.status_code == 422  # read whole and validated: the customer is unknown
    assert response.json()["detail"][0]["type"] == "unknown_customer"


@pytest.fixture
def small_limits(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    runtime = hostile_runtime(tmp_path, database_url, max_body_bytes=2048)
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.close()


def test_the_limit_is_a_setting(small_limits: TestClient) -> None:
    payload = signup_payload("big", attributes={"notes": "n" * 3000})
    body = json.dumps(payload).encode()

    response = small_limits.post(
        "/hooks/signup",
        content=body,
        headers=signed_headers(body, timestamp=hook_time(small_limits)),
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than 2048 bytes"}
    small = json.dumps(signup_payload("small")).encode()
    assert signup_raw(small_limits, small).status_code == 202
