"""The suppression list: addresses no journey may mail. Checked at send time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
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
    session: Session,
    *,
    reason: str | None = None,
    limit: int = 100,
    offset: int = 0,
    after: tuple[datetime, str] | None = None,
) -> list[SuppressionEntry]:
    """Newest first (then by address), optionally only one reason; after the key
    ``(created_at, email)`` of the last entry of the previous page."""
    table = suppressions
    query = select(table).order_by(table.c.created_at.desc(), table.c.email)
    if reason is not None:
        query = query.where(table.c.reason == reason)
    if after is not None:
        created, email = after
        query = query.where(
            or_(
                table.c.created_at < created,
                and_(table.c.created_at == created, table.c.email > email),
            )
        )
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
