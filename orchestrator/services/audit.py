"""Reading the audit log (the console's Audit page): newest first, paged by id."""

from __future__ import annotations

from sqlalchemy import Engine

from orchestrator.audit.log import AuditRecord, recent


def audit_page(
    engine: Engine,
    *,
    limit: int = 50,
    before_id: int | None = None,
    target: tuple[str, str] | None = None,
) -> tuple[list[AuditRecord], int | None]:
    """A page of rows and the id to ask for the next one (None on the last page)."""
    with engine.connect() as connection:
        rows = recent(connection, limit=limit + 1, before_id=before_id, target=target)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
