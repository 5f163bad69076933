"""customer pages keep two fifths free: a batch's updates of many customers stay on their page

Migration 0009 left a fifth of each customer page free, so an update that changes no indexed
column stays on the page (HOT). A batch of events updates each of its customers' rows once
(the score, or when it was last computed), all in one transaction, where the old versions
cannot be pruned yet: a page needs room for as many new versions as the batch has customers on
it. With ~13 customers a page, a batch touching a third of all customers (a B2B product's few
thousand accounts, 1,000 of them in a batch) puts 4-5 new versions on each page; a fifth of a
page holds ~3. Two fifths hold ~6-7: every customer whose update changes no indexed column
stays on its page up to a batch of two thirds of all customers.

Measured (bench/README.md, session 20; ``event_statements.py --batches 20 --fillfactor 80|60``,
3,000 customers, three alternating pairs): updates on their page 56% -> 72% (the rest change
the indexed band), the rescoring statement 13.5-13.9 -> 9.4-10.3 ms, PostgreSQL CPU a batch
52.0-55.0 -> 45.5-48.0 ms. The cost: the table's heap is a third larger than at 80 (its
indexes are unchanged).

PostgreSQL only. Like 0009, it applies to pages written from now on (``VACUUM FULL customer``
or pg_repack rewrites the table at once).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 60
BEFORE = 80  # migration 0009's


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE customer SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE customer SET (fillfactor = {BEFORE})")
