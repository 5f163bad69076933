"""Periodic jobs, run by whichever scheduler gets there first: each job remembers how far it
has covered time (``job_watermark``), so it neither runs twice for one window nor skips the
windows an outage swallowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.orm import Session

from orchestrator.db.tables import job_watermarks
from orchestrator.db.upsert import insert_ignoring_conflicts

_JOBS = job_watermarks


@dataclass(frozen=True)
class Window:
    """The stretch of time a claimed run covers: ``(since, until]``."""

    since: datetime
    until: datetime


def claim_window(
    engine: Engine, name: str, every: timedelta, now: datetime, claim_for: timedelta
) -> Window | None:
    """The window to run now, or None when the job is not due or another process runs it.

    A first run covers one period back. A claim lapses after ``claim_for``, so a run whose
    process died is taken over.
    """
    with Session(engine) as session, session.begin():
        insert_ignoring_conflicts(
            session, _JOBS, [{"name": name, "done_until": now - every}], ["name"]
        )
        row = session.execute(
            update(_JOBS)
            .where(
                _JOBS.c.name == name,
                _JOBS.c.done_until <= now - every,
                or_(_JOBS.c.claimed_until.is_(None), _JOBS.c.claimed_until < now),
            )
            .values(claimed_until=now + claim_for)
            .returning(_JOBS.c.done_until)
        ).first()
    return None if row is None else Window(row.done_until, now)


def finish_window(engine: Engine, name: str, window: Window) -> None:
    """Record the window as done and release the claim."""
    with engine.begin() as connection:
        connection.execute(
            update(_JOBS)
            .where(_JOBS.c.name == name)
            .values(done_until=window.until, claimed_until=None)
        )
