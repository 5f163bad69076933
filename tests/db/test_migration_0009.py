"""Migration 0009 leaves a fifth of each customer page free on PostgreSQL (so an update that
changes no indexed column stays on its page), changes nothing on SQLite, and goes back down."""

from __future__ import annotations

from sqlalchemy import text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade


def table_options(url: str, table: str = "customer") -> list[str] | None:
    """PostgreSQL's storage options of ``table`` (None on SQLite)."""
    engine = make_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            return None
        with engine.connect() as connection:
            query = "SELECT reloptions FROM pg_class WHERE oid = CAST(:table AS regclass)"
            options: list[str] | None = connection.execute(
                text(query), {"table": table}
            ).scalar_one()
            return options or []
    finally:
        engine.dispose()


def test_0009_sets_the_customer_fillfactor_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0008")
    before = table_options(empty_url)
    upgrade(empty_url, "0009")
    after = table_options(empty_url)
    command.downgrade(alembic_config(empty_url), "0008")
    down = table_options(empty_url)
    upgrade(empty_url)

    if before is None:  # SQLite
        assert after is None and down is None
    else:
        assert (before, after, down) == ([], ["fillfactor=80"], [])
