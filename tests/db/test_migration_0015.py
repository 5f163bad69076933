"""Migration 0015 drops the index on the customers' health band (and goes back down), so on
PostgreSQL the rescoring's update of a customer whose band changes stays on its page: a HOT
update, which adds no entry to the customer table's other indexes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.health.loader import load_health
from orchestrator.health.rescore import CustomerHealth, _store
from orchestrator.health.score import score
from tests.db.test_migration_0010 import CUSTOMER
from tests.support.environment import ROOT


def customer_indexes(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return sorted(i["name"] or "" for i in inspect(engine).get_indexes("customer"))
    finally:
        engine.dispose()


def test_0015_drops_the_band_index_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0014")
    before = customer_indexes(empty_url)
    upgrade(empty_url, "0015")
    after = customer_indexes(empty_url)
    command.downgrade(alembic_config(empty_url), "0014")
    down = customer_indexes(empty_url)
    upgrade(empty_url)

    assert "ix_customer_health_band" in before
    assert after == [name for name in before if name != "ix_customer_health_band"]
    assert down == before


def test_a_score_that_changes_the_band_is_stored_in_place(empty_url: str) -> None:
    """The rescoring's store, for a customer moving from no band to one: on PostgreSQL the
    row's update is HOT (``pg_stat_xact_user_tables``, this transaction's own counts)."""
    upgrade(empty_url)
    engine = make_engine(empty_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    definition = load_health(ROOT / "journeys" / "health.yaml")
    result = score(definition, {"logins": 3})
    row = CustomerHealth(1, "tech", at, None, None)
    try:
        with engine.begin() as connection:
            connection.execute(CUSTOMER, {"at": at})
        with engine.begin() as connection:
            _store(connection, [row], {1: result}, at)
            stored = connection.execute(
                text("SELECT health_score, health_band FROM customer WHERE id = 1")
            ).one()
            if engine.dialect.name == "postgresql":
                updates = connection.execute(
                    text(
                        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                        " WHERE relid = CAST('customer' AS regclass)"
                    )
                ).one()
                assert tuple(updates) == (1, 1)
    finally:
        engine.dispose()
    assert tuple(stored) == (result.score, result.band)
