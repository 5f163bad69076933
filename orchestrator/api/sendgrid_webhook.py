"""``POST /hooks/sendgrid``: SendGrid's signed event webhook.

Closed until ``STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY`` is set (SendGrid keeps retrying for a
day, so nothing is lost while it is). A verified batch is stored idempotently and applied in
one transaction (:mod:`orchestrator.services.provider_events`), then answered ``200`` with
what was new.
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import answers, json_body
from orchestrator.api.routing import StrictRoute
from orchestrator.services.provider_events import check_sendgrid_headers, receive_sendgrid_events

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
    check_sendgrid_headers(
        x_twilio_email_event_webhook_signature,
        x_twilio_email_event_webhook_timestamp,
        rules=runtime.webhook_rules(),
        clock=runtime.clock,
    )  # before the body is read: a request that cannot be SendGrid's costs nothing
    body = await request.body()  # capped by api/body_limit.py; verified before it is parsed
    summary = await run_in_threadpool(
        receive_sendgrid_events,
        runtime.engine,
        body,
        x_twilio_email_event_webhook_signature,
        x_twilio_email_event_webhook_timestamp,
        rules=runtime.webhook_rules(),
        clock=runtime.clock,
    )
    return EventBatchAccepted(
        received=summary.received, recorded=summary.recorded, duplicates=summary.duplicates
    )
