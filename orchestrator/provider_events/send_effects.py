"""Fold a batch of new events onto the sends they name: delivery status, delivered time,
open and click counts, engagement bits (what funnels count), and reconciliation of sends whose
outcome was unknown.

Many events name the same send, so their effects are added up per send first and written
with one compiled UPDATE run over all sends (``executemany``), not one statement per event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.reconciliation import SETTLEABLE_STATES, settle_from_event
from orchestrator.journeys.states import Engagement
from orchestrator.provider_events.vocabulary import DELIVERY_RANK, EventKind, NormalizedEvent
from orchestrator.tracking.scanners import scanner_agent

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
# The engagement bit each kind of event sets (a click's depends on who clicked: see add()).
ENGAGEMENT_OF: dict[EventKind, Engagement] = {
    EventKind.DELIVERED: Engagement.DELIVERED,
    EventKind.OPENED: Engagement.OPENED,
    EventKind.BOUNCED: Engagement.BOUNCED,
    EventKind.REJECTED: Engagement.BOUNCED,
    EventKind.UNSUBSCRIBED: Engagement.UNSUBSCRIBED,
}


@dataclass
class SendEffect:
    """What a batch's events do to one send, added up in the order they happened."""

    send_id: int
    rank: int = 0
    status: str | None = None
    delivered_at: datetime | None = None
    opens: int = 0
    clicks: int = 0
    engagement: int = 0  # Engagement bits the events set
    first: NormalizedEvent | None = None  # the earliest known event: proof the mail left

    def add(self, event: NormalizedEvent) -> None:
        rank = DELIVERY_RANK.get(event.kind, 0)
        if rank and rank >= self.rank:  # a later event of equal rank wins, as one at a time
            self.rank, self.status = rank, event.kind.value
        if event.kind is EventKind.DELIVERED and self.delivered_at is None:
            self.delivered_at = event.occurred_at
        self.opens += event.kind is EventKind.OPENED
        self.clicks += event.kind is EventKind.CLICKED
        self.engagement |= _engagement(event)
        if self.first is None and event.kind is not EventKind.UNKNOWN:
            self.first = event

    def params(self) -> dict[str, Any]:
        return {
            "b_send_id": self.send_id,
            "b_rank": self.rank,
            "b_status": self.status,
            "b_delivered_at": self.delivered_at,
            "b_opens": self.opens,
            "b_clicks": self.clicks,
            "b_engagement": self.engagement,
        }


def _engagement(event: NormalizedEvent) -> int:
    """The bit an event sets; a provider's click counts as the customer's unless its
    User-Agent is a scanner's (the provider's own link; first-party clicks are judged in full
    by :mod:`orchestrator.tracking.clicks`)."""
    if event.kind is EventKind.CLICKED:
        agent = str(event.payload.get("useragent") or "")
        return Engagement.SCANNED if scanner_agent(agent) else Engagement.CLICKED
    return int(ENGAGEMENT_OF.get(event.kind, 0))


def effects_by_send(events: Iterable[NormalizedEvent]) -> dict[int, SendEffect]:
    """Events in the order they happened → one effect per send they name."""
    effects: dict[int, SendEffect] = {}
    for event in events:
        if event.send_id is not None:
            effects.setdefault(event.send_id, SendEffect(event.send_id)).add(event)
    return effects


def apply_to_sends(session: Session, events: Sequence[NormalizedEvent], now: datetime) -> None:
    """Write the batch's effects on its sends, then settle the ones still waiting."""
    effects = effects_by_send(events)
    if not effects:
        return
    session.execute(_effects_statement(), [effect.params() for effect in effects.values()])
    _settle_waiting(session, effects, now)


def _settle_waiting(session: Session, effects: dict[int, SendEffect], now: datetime) -> None:
    """Sends still ``reconciling`` or ``unknown`` that an event now proves sent (rare: look
    them up first, then settle each one)."""
    proven = [send_id for send_id, effect in effects.items() if effect.first is not None]
    if not proven:
        return
    waiting = session.execute(
        select(_SENDS.c.id).where(_SENDS.c.id.in_(proven), _SENDS.c.state.in_(SETTLEABLE_STATES))
    ).scalars()
    for send_id in waiting:
        first = effects[send_id].first
        assert first is not None
        if settle_from_event(
            session.connection(),
            send_id,
            event=first.event_type,
            occurred_at=first.occurred_at,
            provider_message_id=first.provider_message_id,
            now=now,
        ):
            log.info("send %d settled as sent by a %s event", send_id, first.event_type)


@lru_cache(maxsize=1)
def _effects_statement() -> Update:
    """``UPDATE scheduled_send`` for one send's effect, compiled once and run for many.

    The status moves only forward (by ``DELIVERY_RANK``), the first delivery time stays, and
    counts are added in SQL, so concurrent batches about one send do not lose updates.
    """
    current_rank = case(
        {kind.value: rank for kind, rank in DELIVERY_RANK.items()},
        value=_SENDS.c.delivery_status,
        else_=0,
    )
    rank = bindparam("b_rank", type_=_SENDS.c.open_count.type)
    return (
        update(_SENDS)
        .where(_SENDS.c.id == bindparam("b_send_id"))
        .values(
            delivery_status=case(
                (
                    and_(rank > 0, current_rank <= rank),
                    bindparam("b_status", type_=_SENDS.c.delivery_status.type),
                ),
                else_=_SENDS.c.delivery_status,
            ),
            delivered_at=func.coalesce(
                _SENDS.c.delivered_at,
                bindparam("b_delivered_at", type_=_SENDS.c.delivered_at.type),
            ),
            open_count=_SENDS.c.open_count + bindparam("b_opens", type_=_SENDS.c.open_count.type),
            click_count=_SENDS.c.click_count
            + bindparam("b_clicks", type_=_SENDS.c.click_count.type),
            engagement=_SENDS.c.engagement.bitwise_or(
                bindparam("b_engagement", type_=_SENDS.c.engagement.type)
            ),
        )
    )
