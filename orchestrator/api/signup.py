"""``POST /hooks/signup``: the product's signup flow enrolls a new customer here."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.direct_route import DirectRoute, header_parameters
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.runtime import Runtime
from orchestrator.services.signup import check_signup_headers, enroll_signed_signup

router = APIRouter(route_class=DirectRoute)

TIMESTAMP, SIGNATURE = "x-stepmail-timestamp", "x-stepmail-signature"


@router.post(
    "/hooks/signup",
    status_code=202,
    response_model=SignupAccepted,
    summary="Enroll a new customer",
    responses=answers(401, 413, 422, s401="Missing, wrong or stale signature"),
    openapi_extra={
        **json_body(body_schema(SignupRequest)),
        "parameters": header_parameters(
            x_stepmail_timestamp="Unix seconds",
            x_stepmail_signature='"v1=" + hex HMAC-SHA256 of "<timestamp>.<raw body>"',
        ),
    },
)
async def signup_hook(request: Request) -> Response:
    """Idempotent on ``external_id``: repeating a signup returns the same ids and enrolls once."""
    runtime: Runtime = request.app.state.runtime
    timestamp, signature = request.headers.get(TIMESTAMP), request.headers.get(SIGNATURE)
    hook = runtime.hook_rules()
    check_signup_headers(
        timestamp, signature, hook=hook, clock=runtime.clock
    )  # before the body is read: an unsigned request costs nothing (api/body_budget.py)
    body = await request.body()
    accepted = await run_in_threadpool(
        enroll_signed_signup,
        runtime.engine,
        body,
        timestamp,
        signature,
        hook=hook,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )
    return Response(accepted.model_dump_json(), 202, media_type="application/json")
