"""indexes for the console's and the API's lists that sorted or scanned whole tables

Each list read a page but paid for the table's whole history on every view:

- the sends whose outcome is unknown (the home page's tile and the operations list): a
  sequential scan of ``scheduled_send`` for the few rows in that state. A partial index holds
  only them (``state`` is already in the table's partial indexes, so no update loses HOT);
- the customer page's held mails: a scan of ``send_hold`` (no index on ``customer_id``);
- the console's provider events of one type, newest first: the primary key walked back
  through every newer event of other types (a rare type read the whole table);
- the inbox's closed tasks, latest closed first, and its filter's kinds: every closed task
  sorted, and a ``DISTINCT`` over them, per view;
- ``GET /v1/suppressions``, newest first: the whole list sorted per page.

On PostgreSQL each ``CREATE INDEX`` holds off writes to its table while it is built: seconds
for ``scheduled_send`` at millions of rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNKNOWN = "state = 'unknown'"


def upgrade() -> None:
    op.create_index(
        "ix_scheduled_send_unknown",
        "scheduled_send",
        ["id"],
        sqlite_where=sa.text(UNKNOWN),
        postgresql_where=sa.text(UNKNOWN),
    )
    op.create_index(op.f("ix_send_hold_customer_id"), "send_hold", ["customer_id"])
    op.create_index("ix_provider_event_type", "provider_event", ["event_type", "id"])
    op.create_index("ix_csm_task_closed", "csm_task", ["status", "closed_at", "id"])
    op.create_index("ix_csm_task_kind", "csm_task", ["status", "kind"])
    op.create_index("ix_suppression_created", "suppression", ["created_at"])
    op.create_index("ix_suppression_reason_created", "suppression", ["reason", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_suppression_reason_created", table_name="suppression")
    op.drop_index("ix_suppression_created", table_name="suppression")
    op.drop_index("ix_csm_task_kind", table_name="csm_task")
    op.drop_index("ix_csm_task_closed", table_name="csm_task")
    op.drop_index("ix_provider_event_type", table_name="provider_event")
    op.drop_index(op.f("ix_send_hold_customer_id"), table_name="send_hold")
    op.drop_index("ix_scheduled_send_unknown", table_name="scheduled_send")
