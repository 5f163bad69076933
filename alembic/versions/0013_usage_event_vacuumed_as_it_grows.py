"""usage events are vacuumed every 10,000 inserts, so the health probes stay index-only

Every batch of events rescores its customers: one index probe per customer and health
question on ``usage_event (customer_id, name, occurred_at)`` (``health/inputs.py``), and the
stage rules' probes on the same index (``usage/prefetch.py``). Those are index-only scans,
but only over pages the visibility map marks all-visible; on any other page each event
counted is also read from the heap. Only VACUUM sets those marks, and PostgreSQL's default
starts an insert-triggered vacuum after 1,000 + 20% of the table's rows: on a table of 50
million events, ten million inserts (days of a busy product's events, so most of every
customer's last two weeks of logins) wait for it, and each of them costs a heap read, from
disk once the table outgrows memory.

With the scale factor at 0 and the threshold at 10,000, autovacuum (at most once a minute per
database, its naptime) marks the pages of the last 10,000 or so events and no more each time:
an insert-only vacuum reads only the pages not yet marked and, with nothing deleted, scans no
index (PostgreSQL 14 and later; 13 scans one now and then).
Measured (bench/README.md, session 29; ``bench/event_visibility.py``): the health probes of
1,000 customers with 40 events each, 7,000 heap fetches and 42,490 buffers with the pages
unmarked against none and 26,295 once vacuumed.

PostgreSQL 13 or later (the settings are new in 13); nothing on SQLite or older servers. The
first autovacuum after the upgrade marks every page not marked yet (one pass over the table's
unvacuumed tail); ``VACUUM usage_event`` does it at once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSERT_THRESHOLD = 10_000
_SETTINGS = ("autovacuum_vacuum_insert_threshold", "autovacuum_vacuum_insert_scale_factor")


def upgrade() -> None:
    if _has_insert_vacuum_settings():
        op.execute(
            f"ALTER TABLE usage_event SET ({_SETTINGS[0]} = {INSERT_THRESHOLD}, {_SETTINGS[1]} = 0)"
        )


def downgrade() -> None:
    if _has_insert_vacuum_settings():
        op.execute(f"ALTER TABLE usage_event RESET ({', '.join(_SETTINGS)})")


def _has_insert_vacuum_settings() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    version = bind.execute(sa.text("SHOW server_version_num")).scalar_one()
    return int(version) >= 130000
