"""Migration 0011 leaves two fifths of each customer page free on PostgreSQL (room for a
batch's updates of many customers on one page), changes nothing on SQLite, and goes back down
to 0009's fifth."""

from __future__ import annotations

from orchestrator.db.migrate import upgrade
from tests.db.test_migration_0009 import table_options


def test_0011_sets_the_customer_fillfactor_to_60_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0010")
    before = table_options(empty_url)
    upgrade(empty_url, "0011")
    after = table_options(empty_url)
    command.downgrade(alembic_config(empty_url), "0010")
    down = table_options(empty_url)
    upgrade(empty_url)

    if before is None:  # SQLite
        assert after is None and down is None
    else:
        assert (before, after, down) == (["fillfactor=80"], ["fillfactor=60"], ["fillfactor=80"])
