"""``POST /hooks/signup``: the product's signup flow enrolls a new customer here."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.api.routing import StrictRoute
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.services.signup import check_signup_headers, enroll_signed_signup

router = APIRouter(route_class=StrictRoute)


@router.post(
    "/hooks/signup",
    status_code=202,
    response_model=SignupAccepted,
    summary="Enroll a new customer",
    responses=answers(401, 413, 422, s401="Missing, wrong or stale signature"),
    openapi_extra=json_body(body_schema(SignupRequest)),
)
async def signup_hook(
    request: Request,
    runtime: RuntimeDep,
    x_stepmail_timestamp: str | None = Header(default=None, description="Unix seconds"),
    x_stepmail_signature: str | None = Header(
        default=None, description='"v1=" + hex HMAC-SHA256 of "<timestamp>.<raw body>"'
    ),
) -> SignupAccepted:
    """Idempotent on ``external_id``: repeating a signup returns the same ids and enrolls once."""
    check_signup_headers(
        x_stepmail_timestamp, x_stepmail_signature, hook=runtime.hook_rules(), clock=runtime.clock
    )  # before the body is read: an unsigned request costs nothing (api/body_budget.py)
    body = await request.body()
    return await run_in_threadpool(
        enroll_signed_signup,
        runtime.engine,
        body,
        x_stepmail_timestamp,
        x_stepmail_signature,
        hook=runtime.hook_rules(),
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )
