"""``POST /hooks/signup``: the product's signup flow enrolls a new customer here."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from orchestrator.api.coalescer import Coalescer
from orchestrator.api.direct_route import DirectRoute, header_parameters
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.runtime import Runtime
from orchestrator.services.signup import check_signup_headers
from orchestrator.services.signup_groups import SignedSignup, enroll_signed_group

router = APIRouter(route_class=DirectRoute)

TIMESTAMP, SIGNATURE = "x-stepmail-timestamp", "x-stepmail-signature"
GROUP_SIGNUPS = 100  # a group holds at most this many signups (see orchestrator.api.coalescer)


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
    groups: Coalescer[SignedSignup, SignupAccepted] = request.app.state.signup_groups
    accepted = await groups.submit(SignedSignup(body, timestamp, signature))
    return Response(accepted.model_dump_json(), 202, media_type="application/json")


def signup_groups(runtime: Runtime) -> Coalescer[SignedSignup, SignupAccepted]:
    """The app's coalescer of signups (one per API process)."""

    def run(requests: Sequence[SignedSignup]) -> list[SignupAccepted | Exception]:
        return enroll_signed_group(
            runtime.engine,
            requests,
            hook=runtime.hook_rules(),
            journeys=runtime.journeys,
            rules=runtime.enrollment_rules(),
            clock=runtime.clock,
        )

    return Coalescer(run, kind="signup", max_group=GROUP_SIGNUPS, in_flight=1)
