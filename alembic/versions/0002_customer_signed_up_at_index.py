"""customer.signed_up_at index: the daily health job finds customers who reach actions_after

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_customer_signed_up_at", "customer", ["signed_up_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_customer_signed_up_at", table_name="customer")
