"""SendGrid's signed event webhook (``POST /hooks/sendgrid``): verified, read, then stored
idempotently and applied in one transaction (:mod:`orchestrator.provider_events`).

Closed until ``STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY`` is set (SendGrid keeps retrying for a
day, so nothing is lost while it is).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.errors import WebhookNotConfigured
from orchestrator.provider_events.record import RecordSummary, record_events
from orchestrator.provider_events.sendgrid import SendGridEvents
from orchestrator.provider_events.signature import check_event_headers, verify_event_signature


@dataclass(frozen=True)
class WebhookRules:
    public_key: str | None  # base64 DER (or PEM); None: the webhook is closed
    tolerance: int  # seconds a signature's timestamp may be off
    soft_bounce_limit: int  # soft bounces before an address is suppressed


def check_sendgrid_headers(
    signature: str | None, timestamp: str | None, *, rules: WebhookRules, clock: Clock
) -> None:
    """What the headers alone refuse (the webhook closed, a missing or stale timestamp, a
    signature that is not DER base64): the route asks before it reads up to 4 MiB of body."""
    if not rules.public_key:
        raise WebhookNotConfigured(
            "STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is not configured; events are refused"
        )
    check_event_headers(
        rules.public_key,
        signature,
        timestamp,
        now=clock.now().timestamp(),
        tolerance=rules.tolerance,
    )


def receive_sendgrid_events(
    engine: Engine,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    rules: WebhookRules,
    clock: Clock,
) -> RecordSummary:
    """WebhookNotConfigured without a key (503), InvalidSignature (401), ConfigurationError for
    an unusable key (503), InvalidEventBatch for a body that is not an array of events (400)."""
    check_sendgrid_headers(signature, timestamp, rules=rules, clock=clock)
    assert rules.public_key is not None  # checked above
    now = clock.now()
    verify_event_signature(
        rules.public_key, signature, timestamp, body, now=now.timestamp(), tolerance=rules.tolerance
    )
    events = SendGridEvents.parse_batch(body, received_at=now)
    with Session(engine) as session, session.begin():
        return record_events(
            session, events, soft_bounce_limit=rules.soft_bounce_limit, now=clock.now()
        )
