"""analytics: message archive, first-party clicks, daily rollups and band snapshots

What each sent mail was (message_archive, compressed against archive_dictionary), every
follow of a tracked link (link_click), the counters funnels read (analytics_daily) and the
daily health-band snapshot (health_band_daily); on scheduled_send the engagement bits and what
analytics has counted of each row, on enrollment the same. Rows that existed before are all
uncounted: the rollup job (or ``stepmail analytics rebuild``) counts them. Their engagement is
filled in from what the provider's events had left on them (delivered, opens, clicks, bounces).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import orchestrator.db.types
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The predicates of the partial indexes, spelled as orchestrator/db/models.py spells them.
UNCOUNTED_SEND_SQL = (
    "counted_state <> (CASE WHEN state IN ('sent', 'skipped', 'missed', 'failed', 'unknown', "
    "'cancelled') THEN state ELSE '' END) OR counted_engagement <> engagement"
)
UNCOUNTED_ENROLLMENT_SQL = "counted <> (CASE WHEN state = 'converted' THEN 3 ELSE 1 END)"
COUNTERS = (
    "enrolled",
    "sent",
    "skipped_tier",
    "skipped_suppressed",
    "skipped_opted_out",
    "skipped_condition",
    "skipped_other",
    "missed",
    "failed",
    "unknown",
    "cancelled",
    "delivered",
    "opened",
    "clicked",
    "scanner_clicked",
    "bounced",
    "unsubscribed",
    "converted",
)
_STR = sqlmodel.sql.sqltypes.AutoString
_UTC = orchestrator.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "archive_dictionary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", _STR(length=64), nullable=False),
        sa.Column("template_name", _STR(length=255), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "message_archive",
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("archived_at", _UTC(timezone=True), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("template_name", _STR(length=255), nullable=False),
        sa.Column("dictionary_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["dictionary_id"], ["archive_dictionary.id"]),
        sa.ForeignKeyConstraint(["send_id"], ["scheduled_send.id"]),
        sa.PrimaryKeyConstraint("send_id"),
    )
    op.create_index("ix_message_archive_archived_at", "message_archive", ["archived_at"])
    op.create_index("ix_message_archive_dictionary_id", "message_archive", ["dictionary_id"])
    op.create_table(
        "link_click",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scheduled_send_id", sa.Integer(), nullable=False),
        sa.Column("clicked_at", _UTC(timezone=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", _STR(length=20), nullable=False),
        sa.Column("method", _STR(length=8), nullable=False),
        sa.Column("user_agent", _STR(length=300), nullable=False),
        sa.Column("suspect", sa.Boolean(), nullable=False),
        sa.Column("suspect_reasons", _STR(length=100), nullable=False),
        sa.ForeignKeyConstraint(["scheduled_send_id"], ["scheduled_send.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_link_click_send", "link_click", ["scheduled_send_id", "clicked_at"])
    op.create_table(
        "analytics_daily",
        sa.Column("journey_id", _STR(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("step_id", _STR(length=100), nullable=False),
        sa.Column("tier", _STR(length=10), nullable=False),
        sa.Column("locale", _STR(length=35), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("journey_id", "day", "step_id", "tier", "locale"),
    )
    op.create_index("ix_analytics_daily_day", "analytics_daily", ["day"])
    op.create_table(
        "health_band_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("band", _STR(length=20), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "band"),
    )
    _add_send_columns()
    _add_enrollment_columns()
    op.create_index("ix_customer_health_band", "customer", ["health_band"])
    _engagement_from_provider_events()


def _add_send_columns() -> None:
    zero = sa.text("0")
    op.add_column(
        "scheduled_send", sa.Column("engagement", sa.Integer(), nullable=False, server_default=zero)
    )
    op.add_column(
        "scheduled_send",
        sa.Column("counted_state", _STR(length=12), nullable=False, server_default=sa.text("''")),
    )
    op.add_column(
        "scheduled_send",
        sa.Column("counted_engagement", sa.Integer(), nullable=False, server_default=zero),
    )
    op.add_column("scheduled_send", sa.Column("stat_day", sa.Date(), nullable=True))
    op.add_column("scheduled_send", sa.Column("stat_tier", _STR(length=10), nullable=True))
    op.add_column("scheduled_send", sa.Column("stat_locale", _STR(length=35), nullable=True))
    op.add_column("scheduled_send", sa.Column("stat_kind", _STR(length=20), nullable=True))
    op.create_index(
        "ix_scheduled_send_uncounted",
        "scheduled_send",
        ["id"],
        sqlite_where=sa.text(UNCOUNTED_SEND_SQL),
        postgresql_where=sa.text(UNCOUNTED_SEND_SQL),
    )


def _add_enrollment_columns() -> None:
    op.add_column(
        "enrollment",
        sa.Column("counted", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("enrollment", sa.Column("stat_tier", _STR(length=10), nullable=True))
    op.add_column("enrollment", sa.Column("stat_locale", _STR(length=35), nullable=True))
    op.add_column("enrollment", sa.Column("stat_day", sa.Date(), nullable=True))
    op.create_index(
        "ix_enrollment_uncounted",
        "enrollment",
        ["id"],
        sqlite_where=sa.text(UNCOUNTED_ENROLLMENT_SQL),
        postgresql_where=sa.text(UNCOUNTED_ENROLLMENT_SQL),
    )


def _engagement_from_provider_events() -> None:
    """Sends the event webhook had reported on get their engagement bits (delivered 1, opened 2,
    clicked 4, bounced 8), so the first count of the old rows includes them."""
    op.execute(
        "UPDATE scheduled_send SET engagement = "
        "(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END)"
        " + (CASE WHEN open_count > 0 THEN 2 ELSE 0 END)"
        " + (CASE WHEN click_count > 0 THEN 4 ELSE 0 END)"
        " + (CASE WHEN delivery_status IN ('bounced', 'rejected') THEN 8 ELSE 0 END)"
        " WHERE delivered_at IS NOT NULL OR open_count > 0 OR click_count > 0"
        " OR delivery_status IN ('bounced', 'rejected')"
    )


def downgrade() -> None:
    op.drop_index("ix_customer_health_band", table_name="customer")
    op.drop_index("ix_enrollment_uncounted", table_name="enrollment")
    with op.batch_alter_table("enrollment") as batch_op:
        for name in ("stat_day", "stat_locale", "stat_tier", "counted"):
            batch_op.drop_column(name)
    op.drop_index("ix_scheduled_send_uncounted", table_name="scheduled_send")
    with op.batch_alter_table("scheduled_send") as batch_op:
        for name in (
            "stat_kind",
            "stat_locale",
            "stat_tier",
            "stat_day",
            "counted_engagement",
            "counted_state",
            "engagement",
        ):
            batch_op.drop_column(name)
    op.drop_table("health_band_daily")
    op.drop_index("ix_analytics_daily_day", table_name="analytics_daily")
    op.drop_table("analytics_daily")
    op.drop_index("ix_link_click_send", table_name="link_click")
    op.drop_table("link_click")
    op.drop_index("ix_message_archive_dictionary_id", table_name="message_archive")
    op.drop_index("ix_message_archive_archived_at", table_name="message_archive")
    op.drop_table("message_archive")
    op.drop_table("archive_dictionary")
