"""customer rows leave room on their page: updates in place (HOT)

Every stored event rewrites its customer's row (``health_updated_at``, often the score), and a
signup, stage move or tier change does too. With PostgreSQL's default fillfactor (100) a page
has no room for the new version, so the update writes it elsewhere and adds an entry to each
of the table's seven indexes; with room left on the page, an update that changes no indexed
column stays on it and touches no index (a heap-only tuple). Measured on a batch of 1,000
events over 1,000 customers (bench/README.md, session 7): HOT updates 2% -> 52%, the
rescoring statement 21-24 -> 14 ms.

PostgreSQL only (SQLite has no such setting). It applies to pages written from now on; an
existing table gets it page by page as rows move, or at once with ``VACUUM FULL customer``
(which locks the table) or pg_repack.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE customer SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customer RESET (fillfactor)")
