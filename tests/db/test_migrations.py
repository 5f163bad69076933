"""The Alembic migrations build exactly the schema the models describe, on each database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from orchestrator.db import models
from orchestrator.db.engine import make_engine
from orchestrator.journeys.states import ACTIVE_SEND_STATES


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_the_partial_index_holds_exactly_the_states_the_scheduler_wakes() -> None:
    """The predicate is a literal (the planner matches it by text, migration 0001 wrote it);
    it must name the same states as :data:`ACTIVE_SEND_STATES`."""
    quoted = ", ".join(f"'{state.value}'" for state in ACTIVE_SEND_STATES)
    assert f"state IN ({quoted})" == models.WAKEABLE_SQL
