"""Migration 0012 indexes a send's provider message id only once it has one: the lookup a
provider event makes still reads the index, and the pending rows are not in it."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.db.models import ScheduledSend

INDEX = "ix_scheduled_send_provider_message_id"


def index_predicate(url: str) -> str | None:
    """The index's WHERE clause as the database keeps it, or None for a full index."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                sql = connection.execute(
                    text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                    {"name": INDEX},
                ).scalar_one()
            else:
                sql = connection.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes"
                        " WHERE indexname = :name AND schemaname = current_schema()"
                    ),
                    {"name": INDEX},
                ).scalar_one()
        _, _, where = sql.partition(" WHERE ")
        return where or None
    finally:
        engine.dispose()


def test_0012_makes_the_index_partial_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0011")
    before = index_predicate(empty_url)
    upgrade(empty_url, "0012")
    after = index_predicate(empty_url)
    command.downgrade(alembic_config(empty_url), "0011")
    down = index_predicate(empty_url)
    upgrade(empty_url)

    assert before is None and down is None
    assert after is not None and "provider_message_id IS NOT NULL" in after


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_provider_event_finds_its_send_through_the_partial_index(database_url: str) -> None:
    """The lookup of ``provider_events/record.py`` (``IN`` of the event's ids) implies the
    predicate, so PostgreSQL may read the index: with sequential scans off, the plan says
    whether it can (a predicate the lookup does not imply leaves it a scan)."""
    sends = ScheduledSend.__table__  # type: ignore[attr-defined]
    lookup = select(sends.c.provider_message_id, sends.c.id).where(
        sends.c.provider_message_id.in_(["msg-1", "msg-2"])
    )
    engine = make_engine(database_url)
    try:
        assert INDEX in {index["name"] for index in inspect(engine).get_indexes("scheduled_send")}
        compiled = lookup.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(connection.execute(text(f"EXPLAIN {compiled}")).scalars())
    finally:
        engine.dispose()
    assert INDEX in plan, plan
