"""Operations in the console: the suppression list (search, add, lift), sends whose outcome is
unknown (settled with the same code as ``stepmail sends settle``), and the latest provider
events. Each change is one transaction with its audit row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from orchestrator.audit.log import Actor, record
from orchestrator.clock import Clock
from orchestrator.db.tables import customers, provider_events, scheduled_sends, suppressions
from orchestrator.delivery.unknown_sends import (
    Settlement,
    UnknownSend,
    list_unknown,
    settle_unknown,
)
from orchestrator.errors import InvalidField, NotSuppressed
from orchestrator.recipients.reasons import MANUAL
from orchestrator.recipients.suppression import SuppressionEntry, suppress, unsuppress

_EMAIL = TypeAdapter(EmailStr)
_TOP = "\U0010ffff"
MAX_NOTE = 500


@dataclass(frozen=True)
class SuppressionPage:
    entries: list[SuppressionEntry]
    next_after: str | None  # the last address shown, when there is more


def search_suppressions(
    engine: Engine, query: str = "", *, after: str | None = None, limit: int = 50
) -> SuppressionPage:
    """Addresses starting with ``query`` (lower case), in address order, paged by the last
    address (the unique index on ``email`` serves both)."""
    prefix = query.strip().lower()
    if len(prefix) > 320 or "\x00" in prefix:
        raise InvalidField("q", "at most 320 characters, no NUL")
    s = suppressions
    statement = select(s).order_by(s.c.email).limit(limit + 1)
    if prefix:
        statement = statement.where(s.c.email >= prefix, s.c.email < prefix + _TOP)
    if after is not None:
        statement = statement.where(s.c.email > after)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    entries = [SuppressionEntry(r.email, r.reason, r.source, r.created_at) for r in rows[:limit]]
    return SuppressionPage(entries, entries[-1].email if len(rows) > limit else None)


def suppress_address(engine: Engine, email: str, *, actor: Actor, clock: Clock) -> bool:
    """Suppress by hand (reason ``manual``); True if it was not suppressed before."""
    address = _address(email)
    now = clock.now()
    with Session(engine) as session, session.begin():
        added = suppress(session, address, MANUAL, f"console:{actor.name}", now)
        if added:
            record(session.connection(), actor, "suppression.add", ("address", address), now)
    return added


def lift_suppression(engine: Engine, email: str, *, actor: Actor, clock: Clock) -> None:
    address = _address(email)
    now = clock.now()
    with Session(engine) as session, session.begin():
        reason = session.execute(
            select(suppressions.c.reason).where(suppressions.c.email == address)
        ).scalar()
        if reason is None or not unsuppress(session, address):
            raise NotSuppressed(address)
        record(
            session.connection(),
            actor,
            "suppression.remove",
            ("address", address),
            now,
            reason=reason,
        )


def unknown_sends(engine: Engine, *, limit: int = 100) -> list[UnknownSend]:
    with engine.connect() as connection:
        return list_unknown(connection, limit)


def settle_send(
    engine: Engine,
    send_id: int,
    settlement: Settlement,
    note: str,
    *,
    actor: Actor,
    clock: Clock,
) -> None:
    text = note.strip()
    if len(text) > MAX_NOTE or "\x00" in text:
        raise InvalidField("note", f"at most {MAX_NOTE} characters, no NUL")
    now = clock.now()
    with engine.begin() as connection:
        settle_unknown(connection, send_id, settlement, text, now)
        record(
            connection,
            actor,
            "send.settle",
            ("send", send_id),
            now,
            settlement=settlement.value,
            note=text,
        )


@dataclass(frozen=True)
class ProviderEventLine:
    id: int
    provider: str
    event_type: str
    email: str
    occurred_at: datetime
    received_at: datetime
    send_id: int | None
    journey_id: str | None
    step_id: str | None
    external_id: str | None
    reason: str


def recent_provider_events(
    engine: Engine, *, event_type: str | None = None, limit: int = 100
) -> list[ProviderEventLine]:
    """Newest first, with the send and customer each names."""
    e, s = provider_events, scheduled_sends
    statement = (
        select(e, s.c.journey_id, s.c.step_id, customers.c.external_id)
        .outerjoin(s, s.c.id == e.c.scheduled_send_id)
        .outerjoin(customers, customers.c.id == s.c.customer_id)
        .order_by(e.c.id.desc())
        .limit(limit)
    )
    if event_type:
        statement = statement.where(e.c.event_type == event_type)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [
        ProviderEventLine(
            r.id,
            r.provider,
            r.event_type,
            r.email,
            r.occurred_at,
            r.received_at,
            r.scheduled_send_id,
            r.journey_id,
            r.step_id,
            r.external_id,
            _reason(r.payload),
        )
        for r in rows
    ]


def _reason(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    for key in ("reason", "response", "status", "type"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value[:300]
    return ""


def _address(email: str) -> str:
    try:
        return str(_EMAIL.validate_python(email.strip())).lower()
    except ValidationError:
        raise InvalidField("email", "not a valid address") from None
