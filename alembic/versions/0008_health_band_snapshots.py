"""health-band snapshots: when each was taken

The overview reads the customers per health band from the latest ``health_band_daily`` rows
instead of counting every customer per page view; the scheduler now takes them every five
minutes, and ``taken_at`` says when (empty for the days the first run backfills from
``health_score_history``: orchestrator/analytics/bands.py). Existing rows keep an empty
``taken_at``: they were taken once a day, at an hour nobody recorded.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import orchestrator.db.types
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("health_band_daily", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("taken_at", orchestrator.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("health_band_daily", schema=None) as batch_op:
        batch_op.drop_column("taken_at")
