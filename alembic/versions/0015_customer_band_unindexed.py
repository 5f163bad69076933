"""the customers' health band is no longer indexed: a band change stays on its page (HOT)

``ix_customer_health_band`` served one read, the band snapshot every five minutes
(``analytics/bands.py``), while every update that changes a customer's band had to be a
non-HOT update because of it: a new row version that every one of the customer table's seven
indexes points to again. A batch of events rescores its customers at once, and those whose
score crosses a band's edge (a quarter of the updates in the API bench) paid for it.

Measured (bench/README.md, session 31): 640 score updates in one statement, half of them
changing the band, 10.6–15.0 ms with the index and 4.3–6.1 ms without (every one of them
HOT); in the API bench the rescoring's statement 8.2 / 8.7 -> 7.0 / 7.4 ms and HOT updates
75% -> 94%. The snapshot's count over 200,000 customers: 12–13 ms through the index (all
pages marked all-visible, as a table rewritten by updates seldom is), 32–41 ms as a
sequential scan (119 ms cold), once every five minutes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_customer_health_band", table_name="customer")


def downgrade() -> None:
    op.create_index("ix_customer_health_band", "customer", ["health_band"])
