"""Migration 0013 has autovacuum vacuum ``usage_event`` every 10,000 inserts on PostgreSQL (so
the health probes' index-only scans find the pages marked all-visible), changes nothing on
SQLite, and goes back down to PostgreSQL's defaults."""

from __future__ import annotations

from orchestrator.db.migrate import upgrade
from tests.db.test_migration_0009 import table_options


def test_0013_vacuums_usage_events_every_10000_inserts_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0012")
    before = table_options(empty_url, "usage_event")
    upgrade(empty_url, "0013")
    after = table_options(empty_url, "usage_event")
    command.downgrade(alembic_config(empty_url), "0012")
    down = table_options(empty_url, "usage_event")
    upgrade(empty_url)

    if before is None:  # SQLite
        assert after is None and down is None
    else:
        assert before == [] and down == []
        assert sorted(after or []) == [
            "autovacuum_vacuum_insert_scale_factor=0",
            "autovacuum_vacuum_insert_threshold=10000",
        ]
