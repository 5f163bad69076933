"""The schedule rows' PostgreSQL INSERT (enrollment/store.py) writes every column of the
model: the ones a row carries, and the model's own default for each other column that has
one, so a row written through it is the row the ORM's INSERT wrote."""

from __future__ import annotations

from sqlalchemy.sql.schema import ScalarElementColumnDefault

from orchestrator.db.tables import scheduled_sends
from orchestrator.enrollment.store import SCHEDULE_COLUMNS, SCHEDULE_DEFAULTS


def test_the_statement_gives_each_left_out_column_the_models_default() -> None:
    model = {
        column.name: column.default.arg
        for column in scheduled_sends.c
        if column.name not in SCHEDULE_COLUMNS
        and isinstance(column.default, ScalarElementColumnDefault)
    }
    assert model == SCHEDULE_DEFAULTS
    missing = {
        column.name
        for column in scheduled_sends.c
        if not column.nullable
        and column.name not in SCHEDULE_COLUMNS
        and column.name not in SCHEDULE_DEFAULTS
    }
    assert missing == {"id"}  # the sequence's
