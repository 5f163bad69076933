"""Store provider events once and apply them: delivery status and engagement counts on the
send, reconciliation of unknown outcomes, and the suppression list.

Providers retry and duplicate: an event is new only if neither its id nor its content hash
is stored yet (``INSERT … ON CONFLICT DO NOTHING`` on both unique keys), and only new events
have effects, applied in the order the events happened. One transaction holds a batch, so
its effects are applied all or not at all (if two overlapping batches ever deadlock, one
fails with a 5xx and SendGrid's retry of it is a no-op for what the other stored).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.db.tables import customers, provider_events, scheduled_sends
from orchestrator.observability.metrics import PROVIDER_EVENTS
from orchestrator.provider_events.send_effects import apply_to_sends
from orchestrator.provider_events.vocabulary import EventKind, NormalizedEvent
from orchestrator.recipients.reasons import HARD_BOUNCE, SOFT_BOUNCES, SPAM_REPORT, UNSUBSCRIBE
from orchestrator.recipients.suppression import count_soft_bounce, suppress, unsuppress
from orchestrator.webhooks.facts import send_data
from orchestrator.webhooks.outbox import emit

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_EVENTS = provider_events

# What each kind does to the suppression list (soft bounces are counted first).
SUPPRESS_ON: dict[EventKind, str] = {
    EventKind.BOUNCED: HARD_BOUNCE,
    EventKind.COMPLAINED: SPAM_REPORT,
    EventKind.UNSUBSCRIBED: UNSUBSCRIBE,
}
ADDRESS_KINDS = frozenset({*SUPPRESS_ON, EventKind.SOFT_BOUNCED, EventKind.SUBSCRIBED})


@dataclass(frozen=True)
class RecordSummary:
    """How a batch went: what arrived, what was new, what had been seen before."""

    received: int
    recorded: int
    duplicates: int


def record_events(
    session: Session, events: Sequence[NormalizedEvent], *, soft_bounce_limit: int, now: datetime
) -> RecordSummary:
    """Store the new events of a batch and apply them, in the caller's transaction."""
    events = _with_known_sends(session, events)
    new_ids = _insert_new(session, events, now)
    fresh = _first_of_each(e for e in events if e.event_id in new_ids)
    fresh.sort(key=lambda e: e.occurred_at)  # stable: a batch's order breaks ties
    apply_to_sends(session, fresh, now)
    for event in fresh:
        if event.email and (event.kind in ADDRESS_KINDS or event.suppress_as is not None):
            _update_suppression(session, event, soft_bounce_limit, now)
        PROVIDER_EVENTS.labels(event.kind.value).inc()
    _emit_webhooks(session, fresh, now)
    return RecordSummary(len(events), len(fresh), len(events) - len(fresh))


def _update_suppression(
    session: Session, event: NormalizedEvent, soft_bounce_limit: int, now: datetime
) -> None:
    source = f"{event.provider} {event.event_type}: {event.detail}".strip(": ")
    reason = SUPPRESS_ON.get(event.kind) or event.suppress_as
    if event.kind is EventKind.SOFT_BOUNCED:
        count = count_soft_bounce(session, event.email, event.occurred_at)
        if count >= soft_bounce_limit:
            reason, source = SOFT_BOUNCES, f"{count} soft bounces, last: {source}"
    if reason is not None:
        if suppress(session, event.email, reason, source, event.occurred_at):
            log.info("suppressed an address (%s) after a %s event", reason, event.event_type)
    elif event.kind is EventKind.SUBSCRIBED:
        unsuppress(session, event.email, reasons=[UNSUBSCRIBE])


def _with_known_sends(session: Session, events: Sequence[NormalizedEvent]) -> list[NormalizedEvent]:
    """Keep a send id only if that send exists and went to the event's address; else find
    the send by the provider's message id. Guards against another installation's ids."""
    claimed = {e.send_id for e in events if e.send_id is not None}
    owners: dict[int, str] = {}
    if claimed:
        rows = session.execute(
            select(_SENDS.c.id, customers.c.email)
            .join(customers, customers.c.id == _SENDS.c.customer_id)
            .where(_SENDS.c.id.in_(claimed))
        ).all()
        owners = {row.id: row.email.lower() for row in rows}
    resolved = [_check_owner(e, owners) for e in events]
    wanted = {e.provider_message_id for e in resolved if e.send_id is None}
    wanted.discard(None)
    if not wanted:
        return resolved
    rows = session.execute(
        select(_SENDS.c.provider_message_id, _SENDS.c.id).where(
            _SENDS.c.provider_message_id.in_(wanted)
        )
    ).all()
    by_message: dict[str | None, int] = {row.provider_message_id: row.id for row in rows}
    return [
        _replace_send(e, by_message.get(e.provider_message_id)) if e.send_id is None else e
        for e in resolved
    ]


def _check_owner(event: NormalizedEvent, owners: dict[int, str]) -> NormalizedEvent:
    if event.send_id is None:
        return event
    owner = owners.get(event.send_id)
    if owner is not None and (not event.email or owner == event.email):
        return event
    return _replace_send(event, None)


def _replace_send(event: NormalizedEvent, send_id: int | None) -> NormalizedEvent:
    return replace(event, send_id=send_id)


def _insert_new(session: Session, events: Sequence[NormalizedEvent], now: datetime) -> set[str]:
    """Insert what is not stored yet; returns the event ids that were inserted."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    if not events:
        return set()
    ordered = sorted(events, key=lambda e: e.event_id)  # one lock order for concurrent batches
    statement = module.insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.event_id)
    # executemany: SQLAlchemy sends multi-row INSERTs ("insertmanyvalues") and gathers RETURNING
    return set(session.execute(statement, [_row(e, now) for e in ordered]).scalars())


def _row(event: NormalizedEvent, now: datetime) -> dict[str, Any]:
    return {
        "provider": event.provider,
        "event_id": event.event_id,
        "content_hash": event.content_hash,
        "event_type": event.event_type,
        "email": event.email,
        "scheduled_send_id": event.send_id,
        "provider_message_id": event.provider_message_id,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "payload": event.payload,
    }


def _first_of_each(events: Iterable[NormalizedEvent]) -> list[NormalizedEvent]:
    """Within one batch, an id that appears twice was inserted once: apply it once."""
    seen: set[str] = set()
    first: list[NormalizedEvent] = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            first.append(event)
    return first


_WEBHOOK_EVENTS = {
    EventKind.DELIVERED: "mail.delivered",
    EventKind.BOUNCED: "mail.bounced",
    EventKind.UNSUBSCRIBED: "recipient.unsubscribed",
}


def _emit_webhooks(session: Session, fresh: Sequence[NormalizedEvent], now: datetime) -> None:
    """``mail.delivered``, ``mail.bounced`` and ``recipient.unsubscribed`` for the new events
    that name one of our sends (the address itself is never sent on)."""
    for kind, event_type in _WEBHOOK_EVENTS.items():
        chosen = [e for e in fresh if e.kind == kind and e.send_id is not None]
        if chosen:
            emit(session, event_type, partial(_event_data, session, chosen), now)


def _event_data(session: Session, events: Sequence[NormalizedEvent]) -> list[dict[str, Any]]:
    known = send_data(session, [e.send_id for e in events if e.send_id is not None])
    return [
        {
            **known.get(e.send_id or 0, {"send_id": e.send_id}),
            "source": e.provider,
            "occurred_at": e.occurred_at.isoformat(),
            "detail": e.detail[:200],
        }
        for e in events
    ]
