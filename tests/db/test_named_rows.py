"""``named_rows`` hands back what the send path read from SQLAlchemy rows, column for column:
the same values by name and by position, in the statement's order, on both databases; and it
refuses keys a named tuple would rename rather than give them other names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import column, select, table, text

from orchestrator.db.engine import make_engine
from orchestrator.db.rows import named_rows, row_type
from orchestrator.db.types import UTCDateTime

PROBE = table("named_rows_probe", column("id"), column("email"), column("at", UTCDateTime()))
AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def test_each_row_reads_as_the_sqlalchemy_row_did(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS named_rows_probe"))
            kind = "TIMESTAMP WITH TIME ZONE" if engine.dialect.name == "postgresql" else "TEXT"
            connection.execute(
                text(f"CREATE TABLE named_rows_probe (id INTEGER, email TEXT, at {kind})")
            )
            connection.execute(
                PROBE.insert(),
                [
                    {"id": 1, "email": "a@example.com", "at": AT},
                    {"id": 2, "email": None, "at": None},
                ],
            )
            query = select(PROBE.c.email, PROBE.c.id.label("send_id"), PROBE.c.at).order_by(
                PROBE.c.id
            )
            expected = connection.execute(query).all()
            named = named_rows(connection.execute(query))
            connection.execute(text("DROP TABLE named_rows_probe"))
    finally:
        engine.dispose()

    assert len(named) == len(expected) == 2
    for row, before in zip(named, expected, strict=True):
        assert tuple(row) == tuple(before)
        assert (row.email, row.send_id, row.at) == (before.email, before.send_id, before.at)
        assert row[1] == before[1]
    assert named[0].at == AT and named[0].at.tzinfo is not None  # the column's type applied
    assert named[1].email is None


def test_the_same_keys_share_one_type() -> None:
    assert row_type(("a", "b")) is row_type(("a", "b"))
    assert row_type(("a", "b")) is not row_type(("b", "a"))


@pytest.mark.parametrize("keys", [("count(*)",), ("_private",), ("id", "id")])
def test_a_key_a_named_tuple_would_rename_is_refused(keys: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        row_type(keys)
