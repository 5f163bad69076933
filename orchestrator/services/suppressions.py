"""Operators edit the suppression list (``/v1/suppressions``, ``stepmail suppressions``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.errors import NotSuppressed
from orchestrator.guards.cursors import Page, decode_cursor, encode_cursor, page_of
from orchestrator.recipients import suppression
from orchestrator.recipients.suppression import SuppressionEntry


def list_suppressions(
    engine: Engine, *, reason: str | None = None, limit: int = 100, offset: int = 0
) -> list[SuppressionEntry]:
    """Newest first, optionally only one reason."""
    with Session(engine) as session:
        return suppression.list_suppressions(session, reason=reason, limit=limit, offset=offset)


def list_suppressions_page(
    engine: Engine, *, reason: str | None = None, cursor: str | None = None, limit: int = 100
) -> Page[SuppressionEntry]:
    """A page of suppressed addresses, newest first; the cursor of the next one
    (InvalidRequest for a cursor that is not one of this list's, the same reason included)."""
    name = f"suppressions:{reason or ''}"[:80]
    after = None
    if cursor:
        created, email = decode_cursor(name, cursor, (datetime, str))
        assert isinstance(created, datetime) and isinstance(email, str)
        after = (created, email)
    with Session(engine) as session:
        found = suppression.list_suppressions(session, reason=reason, limit=limit + 1, after=after)
    shown, last = page_of(found, limit)
    next_cursor = None if last is None else encode_cursor(name, [last.created_at, last.email])
    return Page(shown, next_cursor)


def add_suppression(
    engine: Engine, email: str, *, reason: str, source: str, clock: Clock
) -> tuple[bool, SuppressionEntry]:
    """Suppress ``email``; True when it was not suppressed before. The entry as it stands."""
    with Session(engine) as session, session.begin():
        added = suppression.suppress(session, email, reason, source, clock.now())
        entry = suppression.find_suppression(session, email)
    assert entry is not None
    return added, entry


def remove_suppression(engine: Engine, email: str) -> None:
    """Lift the suppression of ``email`` (and forget its soft bounces); NotSuppressed if there
    was none."""
    with Session(engine) as session, session.begin():
        if not suppression.unsuppress(session, email):
            raise NotSuppressed(email)
