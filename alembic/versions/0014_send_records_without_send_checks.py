"""delivery attempts and archived mails: no per-row foreign-key check against their send

Every mail sent writes a ``delivery_attempt`` row and a ``message_archive`` row, both naming
the send. PostgreSQL checks each foreign key with a trigger query per inserted row
(``SELECT 1 FROM scheduled_send WHERE id = $1 FOR KEY SHARE``): 20,000 attempt rows took
217-226 ms to insert with the check and 83-85 ms without (~6.7 µs a row, more than the insert
itself). ``bench/send_stages.py --mails 4000``, the trees before and after in turn, ten
pairs: PostgreSQL's CPU a mail 0.197 -> 0.179 ms on average (-9%), lower in nine pairs of ten
(bench/README.md, session 29).

The check cannot find anything wrong on these two columns:

- both rows are written in the transaction that finishes the send, for the send's own id,
  read and locked by that transaction (the worker's claim holds the row);
- the only statement that deletes sends (``versions/apply.py``, a step cancelled by a journey
  change, "unscheduled") deletes rows that were never claimed (``attempts = 0``, a waiting
  state, no attempt and no provider event), so never a send with an attempt or an archived
  mail; a claim that comes first changes the state, and the delete skips the row.
  tests/db/test_migration_0014.py fails if another statement that deletes sends appears.

``message_archive.dictionary_id`` keeps its check: pruning dictionaries races with workers
that hold one in memory, and the check is what turns that race into an archive row dropped
and logged (``archive/store.write_archive``) rather than a dangling id.

Going down restores both constraints; it fails, naming the table, if rows for a missing send
were written meanwhile (none can be by Stepmail).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("delivery_attempt", "scheduled_send_id"), ("message_archive", "send_id"))

# SQLite's constraints have no names; batch mode reflects them under these, so they can be
# dropped by name there too. PostgreSQL named them <table>_<column>_fkey.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def _name(table: str, column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_{column}_fkey"
    return f"fk_{table}_{column}"


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, naming_convention=_SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint(_name(table, column), type_="foreignkey")


def downgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(_name(table, column), "scheduled_send", [column], ["id"])
