"""A service with every door configured (API key, signup secret, SendGrid webhook key) and the
calls an attacker or a careless client would make at it: raw bodies, signed or not, driven
straight through ASGI when a test must count what the application reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, suppressions, usage_events
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.transports.outbox import OutboxTransport
from tests.fakes.sendgrid_events import EventSigner
from tests.support.environment import START, make_settings
from tests.support.signups import hook_time, signed_headers, signup_payload

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"Content-Type": "application/json"}
SIGNER = EventSigner()  # one key pair for the session: generating one per test costs time


def hostile_runtime(tmp_path: Path, database_url: str, **overrides: Any) -> Runtime:
    settings = make_settings(
        tmp_path,
        database_url,
        api_key=API_KEY,
        sendgrid_webhook_public_key=SIGNER.public_key,
        **overrides,
    )
    return build_runtime(
        settings, clock=FrozenClock(START), transport=OutboxTransport(settings.outbox_dir)
    )


@pytest.fixture
def armed_runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = hostile_runtime(tmp_path, database_url)
    yield runtime
    runtime.close()


@pytest.fixture
def armed_client(armed_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(armed_runtime), raise_server_exceptions=False) as client:
        yield client


def signup_raw(client: TestClient, body: bytes) -> httpx.Response:
    response: httpx.Response = client.post(
        "/hooks/signup", content=body, headers=signed_headers(body, timestamp=hook_time(client))
    )
    return response


def sendgrid_raw(client: TestClient, body: bytes) -> httpx.Response:
    stamp = int(START.timestamp())
    response: httpx.Response = client.post(
        "/hooks/sendgrid", content=body, headers=SIGNER.headers(body, stamp)
    )
    return response


def v1_raw(client: TestClient, method: str, path: str, body: bytes) -> httpx.Response:
    response: httpx.Response = client.request(method, path, content=body, headers={**AUTH, **JSON})
    return response


def enroll(client: TestClient, external_id: str = "a1") -> None:
    body = json.dumps(signup_payload(external_id)).encode()
    assert signup_raw(client, body).status_code == 202


def stored_rows(runtime: Runtime) -> dict[str, int]:
    """How many customers, usage events and suppressions are stored: nothing partial may be."""
    with runtime.engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (customers, usage_events, suppressions)
        }


class CountingBody:
    """A 16 MiB request body (over every limit; bounded so that an application without a
    limit fails the test instead of exhausting memory), handed to the application chunk by
    chunk through ASGI's ``receive``; counts what the application pulled."""

    def __init__(self, chunk: int = 64 * 1024, total: int = 16 * 1024 * 1024) -> None:
        self.chunk, self.total, self.pulled = chunk, total, 0

    async def receive(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += self.chunk
        return {"type": "http.request", "body": b"x" * self.chunk, "more_body": True}


def call_asgi(
    app: FastAPI, method: str, path: str, headers: dict[str, str], body: CountingBody
) -> tuple[int, bytes]:
    """One request straight through the ASGI interface: (status, response body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, body.receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, content
