"""the provider's message id is indexed only for the sends that have one

``scheduled_send.provider_message_id`` is set when the provider accepts a mail, and read only
to find the send a provider event names (``provider_events/record.py``: ``IN (...)`` of the
event's ids). The index held an entry for every row, so every pending step of every journey
(a million, at the issue's scale) had one, all NULL, never looked up; and a send's insert and
its two updates before it is sent (dispatched, claimed), none of them HOT since each changes
``state``, each added another NULL entry.

Now the index holds the rows that have an id. A lookup by id implies ``IS NOT NULL``, so the
planner takes it as before (tests/db/test_migration_0012.py reads the plan). Measured
(bench/README.md, session 23): a send's insert and its three updates write 2,480 bytes of WAL
to ``scheduled_send`` and its indexes against 2,679; ``send_stages.py --mails 4000`` in all
6,182-6,186 bytes a mail against 6,389-6,530; over 100,000 rows without an id the index is
one page against 87.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_scheduled_send_provider_message_id"
KNOWN = "provider_message_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="scheduled_send")
    op.create_index(
        INDEX,
        "scheduled_send",
        ["provider_message_id"],
        postgresql_where=sa.text(KNOWN),
        sqlite_where=sa.text(KNOWN),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="scheduled_send")
    op.create_index(INDEX, "scheduled_send", ["provider_message_id"])
