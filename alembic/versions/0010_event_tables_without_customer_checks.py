"""usage events and health history: no per-row foreign-key check against the customer

A batch of 1,000 events inserts 1,000 ``usage_event`` rows and, for every customer whose score
moved, a ``health_score_history`` row. PostgreSQL checks a foreign key with one trigger query
per inserted row (``SELECT 1 FROM customer WHERE id = $1 FOR KEY SHARE``): ~7 ms of the
~50-58 ms of PostgreSQL CPU such a batch costs, the largest single item left on the event path
(bench/README.md, session 20).

The check cannot find anything wrong on these two tables:

- every writer inserts the ids of customers it read, and on the event path locked
  (``FOR UPDATE``), in the same transaction, so the customer exists when the row is written;
- no customer row is ever deleted: Stepmail has no statement that deletes one (a customer who
  leaves is marked ``cancelled_at``), and tests/db/test_migration_0010.py fails if one appears.

Every other table keeps its foreign keys: their rows are written a few at a time, where the
check costs nothing measurable, and ``enrollment``/``scheduled_send`` are what the schedule's
guarantees stand on.

Going down restores both constraints; it fails, naming the table, if rows for a missing
customer were written meanwhile (none can be by Stepmail).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("usage_event", "health_score_history")

# SQLite's constraints from 0001 have no names; batch mode reflects them under these, so they
# can be dropped by name there too. PostgreSQL named them <table>_customer_id_fkey.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def _name(table: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_customer_id_fkey"
    return f"fk_{table}_customer_id"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=_SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint(_name(table), type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(_name(table), "customer", ["customer_id"], ["id"])
