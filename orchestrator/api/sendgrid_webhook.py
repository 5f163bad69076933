"""``POST /hooks/sendgrid``: SendGrid's signed event webhook.

Closed until ``STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY`` is set (SendGrid keeps retrying for a
day, so nothing is lost while it is). A verified batch is stored idempotently and applied in
one transaction, then answered ``200`` with what was new.
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import answers, json_body
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import (
    WebhookNotConfigured,
)
from orchestrator.provider_events.record import record_events
from orchestrator.provider_events.sendgrid import SendGridEvents
from orchestrator.provider_events.signature import verify_event_signature
from orchestrator.provider_events.vocabulary import NormalizedEvent
from orchestrator.runtime import Runtime

router = APIRouter(route_class=StrictRoute)


class EventBatchAccepted(BaseModel):
    """``recorded`` events were new and applied; ``duplicates`` had been received before."""

    received: int
    recorded: int
    duplicates: int


@router.post(
    "/hooks/sendgrid",
    response_model=EventBatchAccepted,
    summary="Receive SendGrid delivery and engagement events",
    responses=answers(
        400,
        401,
        413,
        422,
        503,
        s400="The body is not a JSON array of event objects, or breaks a JSON rule",
        s401="Missing, wrong or stale signature",
        s503="No webhook public key is configured (or it is unusable)",
    ),
    openapi_extra=json_body(
        {
            "type": "array",
            "items": {"type": "object"},
            "description": "SendGrid event objects, as SendGrid posts them",
        }
    ),
)
async def sendgrid_events(
    request: Request,
    runtime: RuntimeDep,
    x_twilio_email_event_webhook_signature: str | None = Header(
        default=None, description="base64 DER ECDSA signature of timestamp + raw body"
    ),
    x_twilio_email_event_webhook_timestamp: str | None = Header(
        default=None, description="Unix seconds"
    ),
) -> EventBatchAccepted:
    settings = runtime.settings
    key = settings.sendgrid_webhook_public_key
    if not key:
        raise WebhookNotConfigured(
            "STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is not configured; events are refused"
        )
    body = await request.body()  # capped by api/body_limit.py; verified before it is parsed
    now = runtime.clock.now()
    verify_event_signature(
        key,
        x_twilio_email_event_webhook_signature,
        x_twilio_email_event_webhook_timestamp,
        body,
        now=now.timestamp(),
        tolerance=settings.sendgrid_webhook_tolerance,
    )
    events = SendGridEvents.parse_batch(body, received_at=now)
    return await run_in_threadpool(_record, runtime, events)


def _record(runtime: Runtime, events: list[NormalizedEvent]) -> EventBatchAccepted:
    with Session(runtime.engine) as session, session.begin():
        summary = record_events(
            session,
            events,
            soft_bounce_limit=runtime.settings.soft_bounce_limit,
            now=runtime.clock.now(),
        )
    return EventBatchAccepted(
        received=summary.received, recorded=summary.recorded, duplicates=summary.duplicates
    )
