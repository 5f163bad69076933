"""Migration 0010 drops the per-row customer check of usage events and health history, keeps
their rows and indexes, and goes back down; and nothing in Stepmail deletes a customer, which
is what makes dropping the check safe (the migration's docstring)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade

TABLES = ("usage_event", "health_score_history")
ROOT = Path(__file__).resolve().parents[2]


def customer_keys(url: str) -> dict[str, list[str]]:
    """Each table's foreign keys' referred tables, and usage_event's indexes and unique
    constraints (SQLite's batch mode rebuilds the table: they must come through)."""
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        found = {t: [fk["referred_table"] for fk in inspector.get_foreign_keys(t)] for t in TABLES}
        found["indexes"] = sorted(i["name"] or "" for i in inspector.get_indexes("usage_event"))
        found["unique"] = [u["name"] or "" for u in inspector.get_unique_constraints("usage_event")]
        return found
    finally:
        engine.dispose()


CUSTOMER = text("""
    INSERT INTO customer (id, external_id, public_id, email, name, company, plan,
        annual_contract_value, currency, locale, timezone, tier, tier_explicit, attributes,
        signed_up_at, created_at, updated_at)
    VALUES (1, 'c-1', 'p-1', 'a@example.com', 'A', 'Acme', 'pro', 0, 'USD', 'en', 'UTC',
        'tech', false, '{}', :at, :at, :at)
""")
EVENT = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    VALUES (1, 'login', 'k-1', :at, :at, '{}')
""")
HISTORY = text("""
    INSERT INTO health_score_history (customer_id, score, band, components, computed_at)
    VALUES (1, 70, 'tips', '{}', :at)
""")


def test_0010_drops_the_customer_checks_keeps_the_rows_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0009")
    before = customer_keys(empty_url)
    engine = make_engine(empty_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for statement in (CUSTOMER, EVENT, HISTORY):
            connection.execute(statement, {"at": at})
    engine.dispose()

    upgrade(empty_url, "0010")
    after = customer_keys(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT event_key FROM usage_event")).all() == [("k-1",)]
        assert connection.execute(text("SELECT score FROM health_score_history")).all() == [(70,)]
    engine.dispose()
    command.downgrade(alembic_config(empty_url), "0009")
    down = customer_keys(empty_url)
    upgrade(empty_url)

    assert before["usage_event"] == before["health_score_history"] == ["customer"]
    assert after["usage_event"] == after["health_score_history"] == []
    assert {"ix_usage_event_customer_name", "ix_usage_event_occurred"} <= set(after["indexes"])
    assert after["indexes"] == before["indexes"]
    assert after["unique"] == before["unique"] == ["uq_usage_event_key"]
    assert down == before


# The statements that would remove a customer row: SQL text, SQLAlchemy Core on the table, or
# the ORM deleting a Customer object.
_DELETES_A_CUSTOMER = re.compile(
    r"DELETE\s+FROM\s+customer\b|delete\(\s*(customers|Customer)\b|\.delete\(\s*customer\b",
    re.IGNORECASE,
)


def test_nothing_deletes_a_customer() -> None:
    """Usage events and health history hold customer ids without a foreign key (migration
    0010): they stay valid only while no customer row is deleted. Deleting customers (an
    erasure feature, say) must first delete or re-point those rows, and restore the check."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "orchestrator").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _DELETES_A_CUSTOMER.search(line)
    ]
    assert offenders == []


def test_the_customer_delete_pattern_catches_each_spelling() -> None:
    spellings = [
        'text("DELETE FROM customer WHERE id = :id")',
        "connection.execute(delete(customers).where(customers.c.id == 1))",
        "session.delete(customer)",
    ]
    assert all(_DELETES_A_CUSTOMER.search(s) for s in spellings)
    assert not _DELETES_A_CUSTOMER.search("delete(customer_stage_history)")
