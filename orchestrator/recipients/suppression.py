"""The suppression list: addresses no journey may mail. Checked at send time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.db.tables import soft_bounce_tallies, suppressions
from orchestrator.db.upsert import insert_ignoring_conflicts


def suppress(session: Session, email: str, reason: str, source: str, now: datetime) -> bool:
    """Add ``email`` (case-folded); True if it was not suppressed before."""
    inserted = insert_ignoring_conflicts(
        session,
        suppressions,
        [{"email": email.lower(), "reason": reason, "source": source[:200], "created_at": now}],
        ["email"],
    )
    return inserted == 1


@dataclass(frozen=True)
class SuppressionEntry:
    """One suppressed address, as the CLI and the API show it."""

    email: str
    reason: str
    source: str
    created_at: datetime


def list_suppressions(
    session: Session, *, reason: str | None = None, limit: int = 100, offset: int = 0
) -> list[SuppressionEntry]:
    """Newest first, optionally only one reason."""
    query = select(suppressions).order_by(suppressions.c.created_at.desc(), suppressions.c.id)
    if reason is not None:
        query = query.where(suppressions.c.reason == reason)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [SuppressionEntry(r.email, r.reason, r.source, r.created_at) for r in rows]


def find_suppression(session: Session, email: str) -> SuppressionEntry | None:
    row = session.execute(select(suppressions).where(suppressions.c.email == email.lower())).first()
    return (
        None if row is None else SuppressionEntry(row.email, row.reason, row.source, row.created_at)
    )


def unsuppress(session: Session, email: str, *, reasons: Collection[str] | None = None) -> bool:
    """Lift the suppression of ``email`` (only if its reason is one of ``reasons``, when
    given) and forget its soft bounces, so one more soft bounce does not suppress it again.
    True if an entry was removed."""
    email = email.lower()
    statement = delete(suppressions).where(suppressions.c.email == email)
    if reasons is not None:
        statement = statement.where(suppressions.c.reason.in_(list(reasons)))
    removed = session.execute(statement.returning(suppressions.c.id)).first() is not None
    if removed:
        session.execute(delete(soft_bounce_tallies).where(soft_bounce_tallies.c.email == email))
    return removed


def count_soft_bounce(session: Session, email: str, now: datetime) -> int:
    """Add one soft bounce for ``email`` (atomic upsert) and return its running count."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    table = soft_bounce_tallies
    statement = module.insert(table).values(email=email.lower(), count=1, last_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["email"], set_={"count": table.c.count + 1, "last_at": now}
    )
    return int(session.execute(statement.returning(table.c.count)).scalar_one())
