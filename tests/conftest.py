"""Shared fixtures. Database tests run on SQLite and, when STEPMAIL_TEST_POSTGRES_URL is set,
on PostgreSQL too; in CI (CI=true) a missing server fails the run instead of skipping.
Helpers live in ``tests/support``; the journeys behaviour tests run on in ``tests/journeys``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from orchestrator.webhooks.outbox import forget_subscribers
from tests.support.environment import START, FixedDraw, make_settings, require_server

# Tests run as development: their identities are RFC 2606 example domains, which production
# refuses. Set in the environment, so processes the tests start inherit it; the tests of
# production mode set STEPMAIL_ENVIRONMENT=production themselves.
os.environ.setdefault("STEPMAIL_ENVIRONMENT", "development")

_MIGRATED: set[str] = set()


def _reset(engine: Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _fresh_subscribers() -> None:
    """Each test's database is new: what a previous one said about webhook subscribers (a
    per-process memory, webhooks/outbox.py) does not hold for it."""
    forget_subscribers()


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


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings,
        clock=clock,
        transport=OutboxTransport(settings.outbox_dir),
        jitter=FixedDraw(),
    )
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client
