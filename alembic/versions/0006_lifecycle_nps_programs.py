"""lifecycle stages, NPS answers, held sends, programs, the customer's relationship

Revision ID: 0006
Revises: 0007
Create Date: 2026-11-30 08:00:00

It touches only its own tables and columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import orchestrator.db.types
from alembic import op

revision: str = "0006"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOMENT = orchestrator.db.types.UTCDateTime(timezone=True)


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", _text(40), nullable=True))
        batch_op.add_column(sa.Column("stage_source", _text(10), nullable=True))
        batch_op.add_column(sa.Column("stage_changed_at", _MOMENT, nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", _MOMENT, nullable=True))
        batch_op.add_column(sa.Column("exited_at", _MOMENT, nullable=True))
        batch_op.add_column(sa.Column("converted_at", _MOMENT, nullable=True))
    with op.batch_alter_table("csm_task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", _text(500), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", _MOMENT, nullable=True))

    op.create_table(
        "customer_stage_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("stage", _text(40), nullable=False),
        sa.Column("previous", _text(40), nullable=True),
        sa.Column("source", _text(10), nullable=False),
        sa.Column("reason", _text(500), nullable=False),
        sa.Column("changed_at", _MOMENT, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_stage_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stage_history_customer", ["customer_id", "changed_at"], unique=False
        )

    op.create_table(
        "survey_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("survey", _text(100), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", _text(2000), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("first_answered_at", _MOMENT, nullable=False),
        sa.Column("answered_at", _MOMENT, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "survey", name="uq_survey_response"),
    )

    op.create_table(
        "send_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scheduled_send_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("held_at", _MOMENT, nullable=False),
        sa.Column("ended_at", _MOMENT, nullable=True),
        sa.Column("outcome", _text(20), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["scheduled_send_id"], ["scheduled_send.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["csm_task.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("send_hold", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_send_hold_scheduled_send_id"), ["scheduled_send_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_send_hold_task_id"), ["task_id"], unique=False)

    op.create_table(
        "program_registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", _text(100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("registered_at", _MOMENT, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "customer_id", name="uq_program_registration"),
    )
    with op.batch_alter_table("program_registration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_program_registration_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "program_seats",
        sa.Column("program_id", _text(100), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id"),
    )


def downgrade() -> None:
    op.drop_table("program_seats")
    with op.batch_alter_table("program_registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_program_registration_customer_id"))
    op.drop_table("program_registration")
    with op.batch_alter_table("send_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_send_hold_task_id"))
        batch_op.drop_index(batch_op.f("ix_send_hold_scheduled_send_id"))
    op.drop_table("send_hold")
    op.drop_table("survey_response")
    with op.batch_alter_table("customer_stage_history", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_history_customer")
    op.drop_table("customer_stage_history")
    with op.batch_alter_table("csm_task", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("closed_reason")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        for column in (
            "converted_at",
            "exited_at",
            "cancelled_at",
            "stage_changed_at",
            "stage_source",
            "stage",
        ):
            batch_op.drop_column(column)
