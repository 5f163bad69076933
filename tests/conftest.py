"""Shared fixtures. Database tests run on SQLite and, when STEPMAIL_TEST_POSTGRES_URL is set,
on PostgreSQL too; in CI (CI=true) a missing server fails the run instead of skipping."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from orchestrator.api.app import create_app
from orchestrator.api.signatures import sign
from orchestrator.clock import FrozenClock
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.delivery import deliver_many
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.scheduler import tick
from orchestrator.settings import Settings, load_settings
from orchestrator.transports.base import Transport
from orchestrator.transports.outbox import OutboxTransport

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-signup-secret"
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 10:00 in Tokyo
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Tests run as development: their identities are RFC 2606 example domains, which production
# refuses. Set in the environment, so processes the tests start inherit it; the tests of
# production mode set STEPMAIL_ENVIRONMENT=production themselves.
os.environ.setdefault("STEPMAIL_ENVIRONMENT", "development")


def require_server(variable: str) -> str:
    """The URL of a real server for an integration test: skip locally, fail in CI."""
    url = os.environ.get(variable)
    if not url:
        if IN_CI:
            pytest.fail(f"{variable} is not set; CI must run integration tests on real servers")
        pytest.skip(f"{variable} not set")
    return url


_MIGRATED: set[str] = set()


def _reset(engine: Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the shared PostgreSQL truncated."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stepmail.db'}"
        upgrade(url)
        return url
    url = require_server("STEPMAIL_TEST_POSTGRES_URL")
    if url not in _MIGRATED:
        upgrade(url)
        _MIGRATED.add(url)
    engine = make_engine(url)
    _reset(engine)
    engine.dispose()
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "outbox_dir": tmp_path / "outbox",
        "journeys_dir": ROOT / "journeys",
        "templates_dir": ROOT / "templates" / "mail",
        "signup_hook_secret": SECRET,
        "public_base_url": "https://stepmail.example.com",
        "sender_name": "Acme Cloud",
        "sender_email": "onboarding@acme.example",
        "sender_postal_address": "1-2-3 Marunouchi, Chiyoda-ku, Tokyo",
        "sender_contact": "support@acme.example",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    yield runtime
    runtime.close()


class DirectDispatcher:
    """Runs the send actor's body inline: scheduling tests without a broker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.results: list[str] = []

    def dispatch(self, send_ids: Sequence[int]) -> None:
        """In batches of three, so every scheduling test also crosses batch boundaries."""
        for start in range(0, len(send_ids), 3):
            self.results += deliver_many(self.runtime, send_ids[start : start + 3])


def run_due(runtime: Runtime) -> list[str]:
    """One scheduler tick with inline delivery; returns each handled row's final state."""
    dispatcher = DirectDispatcher(runtime)
    settings = runtime.settings
    tick(
        runtime.engine,
        dispatcher,
        runtime.clock.now(),
        settings.dispatch_batch_size,
        timedelta(seconds=settings.send_lease),
    )
    return dispatcher.results


def signed_headers(
    body: bytes, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Stepmail-Timestamp": ts,
        "X-Stepmail-Signature": sign(secret, ts, body),
    }


def post_signup(client: TestClient, payload: dict[str, Any], **kwargs: Any) -> Any:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post("/hooks/signup", content=body, headers=signed_headers(body, **kwargs))


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def signup_payload(external_id: str = "cust-1", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "external_id": external_id,
        "email": f"{external_id}@customer.example",
        "name": "山田 太郎",
        "company": "株式会社サンプル",
        "plan": "business",
        "annual_contract_value": 360000,
        "locale": "ja",
        "timezone": "Asia/Tokyo",
    }
    payload.update(overrides)
    return payload


def outbox_files(settings: Settings) -> list[Path]:
    return sorted(settings.outbox_dir.glob("*.eml")) if settings.outbox_dir.exists() else []


def with_transport(runtime: Runtime, transport: Transport) -> Runtime:
    runtime.transport = transport
    return runtime
