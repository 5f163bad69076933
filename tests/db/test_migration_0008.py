"""Migration 0008 adds when a health-band snapshot was taken, keeping the rows before it (their
``taken_at`` empty), and goes back down without losing them: on SQLite, and on PostgreSQL in
a schema of its own (the shared test database's public schema stays at the head)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from tests.support.environment import require_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base = require_server("STEPMAIL_TEST_POSTGRES_URL")
    schema = f"m0008_{uuid.uuid4().hex[:8]}"
    engine = make_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns("health_band_daily")}
    finally:
        engine.dispose()


def test_0008_keeps_the_snapshots_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0006")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO health_band_daily (day, band, customers) VALUES (:d, 'red', 4)"),
            {"d": date(2026, 11, 1)},
        )
    upgrade(empty_url, "0008")
    assert "taken_at" in columns(empty_url)
    with engine.begin() as connection:
        assert connection.execute(
            text("SELECT customers, taken_at FROM health_band_daily")
        ).all() == [(4, None)]
        connection.execute(
            text(
                "INSERT INTO health_band_daily (day, band, customers, taken_at) "
                "VALUES (:d, '', 1, :t)"
            ),
            {"d": date(2026, 11, 2), "t": datetime(2026, 11, 2, 1, tzinfo=UTC)},
        )
    engine.dispose()
    command.downgrade(alembic_config(empty_url), "0006")
    assert "taken_at" not in columns(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT band, customers FROM health_band_daily ORDER BY day")
        )
        assert kept.all() == [("red", 4), ("", 1)]
    engine.dispose()
    upgrade(empty_url)
    assert "taken_at" in columns(empty_url)
