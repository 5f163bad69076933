"""Migration 0014 drops the per-row send check of delivery attempts and archived mails, keeps
their rows, indexes and the archive's dictionary check, and goes back down; and nothing in
Stepmail deletes a send that can have an attempt or an archived mail, which is what makes
dropping the check safe (the migration's docstring)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import inspect, text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade

TABLES = ("delivery_attempt", "message_archive")
ROOT = Path(__file__).resolve().parents[2]


def send_keys(url: str) -> dict[str, Any]:
    """Each table's foreign keys (column, referred table), indexes and primary key."""
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: (
                sorted(
                    (fk["constrained_columns"][0], fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                sorted(index["name"] or "" for index in inspector.get_indexes(table)),
                inspector.get_pk_constraint(table)["constrained_columns"],
            )
            for table in TABLES
        }
    finally:
        engine.dispose()


def _filler(column: sa.Column[Any], at: datetime) -> Any:
    """A value of the column's type, for a NOT NULL column the test does not care about."""
    kinds: list[tuple[type, Any]] = [
        (sa.DateTime, at),
        (sa.Boolean, False),
        (sa.Integer, 0),
        (sa.Numeric, 0),
        (sa.LargeBinary, b"x"),
        (sa.JSON, {}),
    ]
    return next((value for kind, value in kinds if isinstance(column.type, kind)), "x")


def insert_row(connection: sa.Connection, table: str, at: datetime, **given: Any) -> None:
    """A row of ``table`` with ``given`` values and a filler in every other required column."""
    reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
    values = dict(given)
    for column in reflected.columns:
        required = not column.nullable and column.server_default is None
        if required and column.name not in values and column.autoincrement is not True:
            values[column.name] = _filler(column, at)
    connection.execute(sa.insert(reflected).values(values))


def test_0014_drops_the_send_checks_keeps_the_rows_and_goes_back_down(empty_url: str) -> None:
    from alembic import command
    from orchestrator.db.migrate import alembic_config

    upgrade(empty_url, "0013")
    before = send_keys(empty_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        insert_row(connection, "customer", at, id=1, external_id="c-1", public_id="p-1")
        insert_row(connection, "enrollment", at, id=1, customer_id=1)
        insert_row(connection, "scheduled_send", at, id=1, enrollment_id=1, customer_id=1)
        insert_row(connection, "archive_dictionary", at, id=1, digest="d-1")
        insert_row(connection, "delivery_attempt", at, id=1, scheduled_send_id=1, attempt=1)
        insert_row(connection, "message_archive", at, send_id=1, dictionary_id=1, body=b"m")
    engine.dispose()

    upgrade(empty_url, "0014")
    after = send_keys(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT attempt FROM delivery_attempt")).all() == [(1,)]
        assert connection.execute(text("SELECT body FROM message_archive")).all() == [(b"m",)]
    engine.dispose()
    command.downgrade(alembic_config(empty_url), "0013")
    down = send_keys(empty_url)
    upgrade(empty_url)

    assert before["delivery_attempt"][0] == [("scheduled_send_id", "scheduled_send")]
    assert before["message_archive"][0] == [
        ("dictionary_id", "archive_dictionary"),
        ("send_id", "scheduled_send"),
    ]
    assert after["delivery_attempt"][0] == []
    assert after["message_archive"][0] == [("dictionary_id", "archive_dictionary")]
    for table in TABLES:  # indexes and primary keys come through SQLite's rebuild
        assert after[table][1:] == before[table][1:]
    assert down == before


# The statements that would remove a send row: SQL text, SQLAlchemy Core on the table (under
# any of the names the code gives it), or the ORM deleting a ScheduledSend object.
_DELETES_A_SEND = re.compile(
    r"DELETE\s+FROM\s+scheduled_send\b|delete\(\s*(_S|_SENDS|scheduled_sends|ScheduledSend)\b"
    r"|\.delete\(\s*(send|scheduled_send)\b",
    re.IGNORECASE,
)
# The one that may: a journey change's cancelled step, rows never claimed (``_fresh``:
# ``attempts == 0``, a waiting state) with no attempt and no provider event.
_ALLOWED = {"orchestrator/versions/apply.py"}


def test_only_a_cancelled_steps_unclaimed_sends_are_deleted() -> None:
    """Delivery attempts and archived mails hold send ids without a foreign key (migration
    0014): they stay valid only while no send that was ever claimed is deleted. A feature
    that deletes sent rows (a retention job, say) must first delete those rows and restore
    the check."""
    found = [
        (str(path.relative_to(ROOT)), number)
        for path in sorted((ROOT / "orchestrator").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _DELETES_A_SEND.search(line)
    ]
    assert [path for path, _ in found if path not in _ALLOWED] == []
    assert len(found) == 1, found  # the cancel's delete, and nothing else there
    apply = (ROOT / "orchestrator/versions/apply.py").read_text()
    assert "_S.c.attempts == 0" in apply and "untouched" in apply


def test_the_send_delete_pattern_catches_each_spelling() -> None:
    spellings = [
        'text("DELETE FROM scheduled_send WHERE id = :id")',
        "connection.execute(delete(scheduled_sends).where(scheduled_sends.c.id == 1))",
        "connection.execute(delete(_S).where(_S.c.id == 1))",
        "session.delete(send)",
    ]
    assert all(_DELETES_A_SEND.search(s) for s in spellings)
    assert not _DELETES_A_SEND.search("delete(send_hold)")
