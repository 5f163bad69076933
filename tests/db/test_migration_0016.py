"""Migration 0016 adds the indexes the console's and the API's lists read their pages through
(and goes back down); each is what the models say (``test_migrations.py``)."""

from __future__ import annotations

from sqlalchemy import inspect

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade

ADDED = {
    "scheduled_send": "ix_scheduled_send_unknown",
    "send_hold": "ix_send_hold_customer_id",
    "provider_event": "ix_provider_event_type",
    "csm_task": "ix_csm_task_closed ix_csm_task_kind",
    "suppression": "ix_suppression_created ix_suppression_reason_created",
}


def indexes(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return {table: {i["name"] or "" for i in inspector.get_indexes(table)} for table in ADDED}
    finally:
        engine.dispose()


def test_0016_adds_the_lists_indexes_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0015")
    before = indexes(empty_url)
    upgrade(empty_url, "0016")
    after = indexes(empty_url)
    command.downgrade(alembic_config(empty_url), "0015")
    down = indexes(empty_url)
    upgrade(empty_url)

    for table, names in ADDED.items():
        assert after[table] == before[table] | set(names.split()), table
    assert down == before
