"""journey versions: snapshots of each distinct journey content, the current version per
journey, the version each enrollment started on and follows, and the indexes a version change
reads through

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 07:36:53
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import orchestrator.db.types
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAKEABLE = "state IN ('pending', 'dispatched', 'sending', 'stalled', 'reconciling')"


def upgrade() -> None:
    op.create_table(
        "journey_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("seen_at", orchestrator.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", orchestrator.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("apply_report", sa.JSON(), nullable=True),
        sa.Column("blocked_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "content_hash", name="uq_journey_version_hash"),
        sa.UniqueConstraint("journey_id", "number", name="uq_journey_version_number"),
    )
    op.create_table(
        "snapshot_file",
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash"),
    )
    op.create_table(
        "journey_current",
        sa.Column("journey_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("applied_at", orchestrator.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["journey_version.id"]),
        sa.PrimaryKeyConstraint("journey_id"),
    )
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_enrollment_journey_state", ["journey_id", "state"], unique=False)
        batch_op.create_foreign_key(
            "fk_enrollment_started_version", "journey_version", ["started_version_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_enrollment_version", "journey_version", ["version_id"], ["id"]
        )

    with op.batch_alter_table("scheduled_send", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_send_active_step",
            ["journey_id", "step_id"],
            unique=False,
            sqlite_where=sa.text(WAKEABLE),
            postgresql_where=sa.text(WAKEABLE),
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_send", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_scheduled_send_active_step",
            sqlite_where=sa.text(WAKEABLE),
            postgresql_where=sa.text(WAKEABLE),
        )

    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_constraint("fk_enrollment_version", type_="foreignkey")
        batch_op.drop_constraint("fk_enrollment_started_version", type_="foreignkey")
        batch_op.drop_index("ix_enrollment_journey_state")
        batch_op.drop_column("version_id")
        batch_op.drop_column("started_version_id")

    op.drop_table("journey_current")
    op.drop_table("snapshot_file")
    op.drop_table("journey_version")
