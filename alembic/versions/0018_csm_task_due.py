"""an index of every CSM task by due time, for the task API's status=all

``GET /v1/tasks?status=all`` sorted every task by due time for each page it served (the
``(status, due_at)`` index orders one status only), so walking every page read and sorted
the whole table once a page. With ``(due_at, id)`` a page is read from its key onwards.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_csm_task_due", "csm_task", ["due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_csm_task_due", table_name="csm_task")
