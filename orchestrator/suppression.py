"""The suppression list: addresses no journey may mail. Checked at send time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from orchestrator.db.tables import suppressions
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
