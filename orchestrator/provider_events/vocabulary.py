"""The one event vocabulary every provider's events are mapped onto."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What happened to a mail, in our words; ``UNKNOWN`` keeps an unmapped event storable."""

    QUEUED = "queued"  # the provider took the mail and will try to deliver it
    DEFERRED = "deferred"  # the receiving server said "later"; the provider keeps trying
    DELIVERED = "delivered"
    SOFT_BOUNCED = "soft_bounced"  # refused for now (blocked, 4xx): counted, not final
    BOUNCED = "bounced"  # refused for good: the address is suppressed
    REJECTED = "rejected"  # the provider dropped it without trying (its own suppression list)
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"  # marked as spam
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBED = "subscribed"  # resubscribed after an unsubscribe
    UNKNOWN = "unknown"


# How far along its delivery a mail is; a late-arriving earlier event never moves it back.
DELIVERY_RANK: dict[EventKind, int] = {
    EventKind.QUEUED: 1,
    EventKind.DEFERRED: 2,
    EventKind.DELIVERED: 3,
    EventKind.SOFT_BOUNCED: 4,
    EventKind.BOUNCED: 5,
    EventKind.REJECTED: 5,
}


@dataclass(frozen=True)
class NormalizedEvent:
    """One provider event in our vocabulary, with the provider's own record kept as payload.

    ``send_id`` is the ``scheduled_send`` the event names (from the metadata we attached);
    ``suppress_as`` is the suppression reason the event implies, if any, besides what
    ``kind`` implies (a drop because the provider already lists the address as bounced).
    """

    provider: str
    event_id: str
    content_hash: str
    event_type: str
    kind: EventKind
    email: str
    occurred_at: datetime
    send_id: int | None = None
    provider_message_id: str | None = None
    suppress_as: str | None = None
    detail: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
