"""Migration 0008 adds when a health-band snapshot was taken, keeping the rows before it (their
``taken_at`` empty), and goes back down without losing them: on SQLite, and on PostgreSQL in
a schema of its own (the shared test database's public schema stays at the head)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade


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
