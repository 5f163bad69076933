"""how many enrollments started on each journey version, kept by the rollup job

The journey page showed, for each version, how many customers started on it by counting
every enrollment the journey ever had, on every view: 163 ms at 400,000 enrollments of one
journey (``bench/version_counts.py``), growing with every customer ever enrolled; 2.5 ms now. The
rollup job now adds an enrollment to its version's row when it first counts it; the page
adds the few not counted yet, read through a partial index of them
(``ix_enrollment_not_counted``: ``counted = 0``, by journey and version).

The table is filled here from the enrollments already counted (one read of the enrollment
table; the ones not counted yet are added by the job's next pass, as new ones are). On
PostgreSQL the index holds off writes to ``enrollment`` while it is built (it holds only the
rows not counted yet, but the build reads the whole table).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_COUNTED = "counted = 0"


def upgrade() -> None:
    op.create_table(
        "journey_version_starts",
        sa.Column("version_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("enrollments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["journey_version.id"]),
        sa.PrimaryKeyConstraint("version_id"),
    )
    op.execute(
        "INSERT INTO journey_version_starts (version_id, enrollments) "
        "SELECT started_version_id, count(*) FROM enrollment "
        "WHERE counted <> 0 AND started_version_id IS NOT NULL "
        "GROUP BY started_version_id"
    )
    op.create_index(
        "ix_enrollment_not_counted",
        "enrollment",
        ["journey_id", "started_version_id"],
        sqlite_where=sa.text(NOT_COUNTED),
        postgresql_where=sa.text(NOT_COUNTED),
    )


def downgrade() -> None:
    op.drop_index("ix_enrollment_not_counted", table_name="enrollment")
    op.drop_table("journey_version_starts")
