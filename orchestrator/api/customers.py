"""``/v1/customers/{external_id}``: what the product knows changed about a customer (PATCH),
a lifecycle stage set by hand (``PUT .../stage``), the customer with their stage, NPS answers,
enrollments and steps, and their sends (GET), and what a sent mail was
(``GET /v1/sends/{id}/message``, from the archive)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from orchestrator.analytics.customers import CustomerDetail, CustomerProfile, SendSummary
from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.paging import LINK_HEADER, CursorQuery, PageOut, page_headers
from orchestrator.api.routing import StrictRoute
from orchestrator.customers.changes import CustomerPatch, CustomerView
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.services.analytics import customer_page, customer_sends_page
from orchestrator.services.archive import archived_message
from orchestrator.services.customers import update_customer
from orchestrator.services.stages import StageChoice, set_stage

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))


@router.patch(
    # ``:path``: an id may hold ``/`` (``acct/42``), and the server decodes ``%2F`` before
    # routing, so a one-segment route could never reach that customer (probe L8).
    "/v1/customers/{external_id:path}",
    response_model=CustomerView,
    summary="Update a customer (attributes merge; the tier follows the contract value)",
    responses=answers(404, 413, 422, s404="Unknown customer"),
)
async def patch_customer(
    external_id: Annotated[str, Path(min_length=1, max_length=255)],
    patch: CustomerPatch,
    runtime: RuntimeDep,
    background: BackgroundTasks,
) -> CustomerView:
    return await run_in_threadpool(
        update_customer,
        runtime.engine,
        external_id,
        patch,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=lambda task_ids: background.add_task(runtime.notify_now, task_ids),
    )


@router.put(
    "/v1/customers/{external_id}/stage",
    response_model=CustomerView,
    summary="Set the lifecycle stage by hand (kept until the rules pass it; pinned: kept)",
    responses=answers(404, 413, 422, s404="Unknown customer"),
)
async def put_stage(
    external_id: Annotated[str, Path(min_length=1, max_length=255)],
    choice: StageChoice,
    runtime: RuntimeDep,
) -> CustomerView:
    return await run_in_threadpool(
        set_stage,
        runtime.engine,
        external_id,
        choice,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
    )


class HealthOut(BaseModel):
    score: int | None
    band: str | None
    updated_at: datetime | None = Field(
        description="When the score was last computed, to within a minute: a score that did"
        " not move is stamped again at most once a minute"
    )


class StepOut(BaseModel):
    """One step of an enrollment; ``state`` is ``not_scheduled`` for a step with no row yet
    (an event step, a branch of a wait). ``next_due_local`` is in the customer's time zone."""

    step_id: str
    send_id: int | None
    state: str
    reason: str | None
    due_at: datetime | None
    next_due_local: str | None
    sent_at: datetime | None
    sent_at_local: str | None
    subject: str | None = Field(description="As archived when it was sent")
    delivery_status: str | None
    opened: bool
    clicked: bool
    converted: bool


class NpsOut(BaseModel):
    survey: str
    score: int = Field(ge=0, le=10)
    category: str = Field(description="detractor (0-6), passive (7-8) or promoter (9-10)")
    comment: str | None
    answered_at: datetime


class EnrollmentOut(BaseModel):
    id: int
    journey_id: str
    journey_name: str
    state: str
    entry_key: str
    anchor_at: datetime
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    steps: list[StepOut]


class CustomerOut(CustomerProfile):
    """The customer: the profile's fields (declared once, in the analytics layer), then
    health, enrollments, stage and NPS in the API's shapes."""

    health: HealthOut
    suppressed: str | None = Field(description="Why the address is suppressed; null: it is not")
    enrollments: list[EnrollmentOut]
    stage: str | None = Field(description="The lifecycle stage (journeys/lifecycle.yaml), if any")
    stage_source: str | None = Field(
        description="Who set it: signup, rules, manual (until the rules move past it) or pinned"
    )
    stage_changed_at: datetime | None
    cancelled_at: datetime | None = Field(
        description="When the subscription was cancelled (null: it runs)"
    )
    nps: list[NpsOut] = Field(description="The latest answer to each survey")

    @classmethod
    def of(cls, detail: CustomerDetail) -> CustomerOut:
        return cls.model_validate(detail.model_dump())


class SendOut(SendSummary):
    """One send of the customer: its state, the subject it went out with, and what became of
    it (delivery, opens, clicks with scanners' flagged, unsubscribe, conversion)."""


class MessageOut(BaseModel):
    """A sent mail as it went out."""

    subject: str
    headers: list[tuple[str, str]]
    html: str
    text: str


ExternalId = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(
    "/v1/customers/{external_id}",
    response_model=CustomerOut,
    summary="A customer: profile, tier, health, lifecycle stage, NPS, enrollments and steps",
    responses=answers(404, 422, s404="Unknown customer"),
)
async def get_customer(external_id: ExternalId, runtime: RuntimeDep) -> CustomerOut:
    detail = await run_in_threadpool(
        customer_page, runtime.engine, external_id, rules=runtime.analytics_rules()
    )
    return CustomerOut.of(detail)


@router.get(
    "/v1/customers/{external_id}/sends",
    response_model=PageOut[SendOut],
    summary="A customer's sends, latest due first, a page at a time",
    responses={
        200: {"description": "A page of sends", "headers": LINK_HEADER},
        **answers(404, 422, s404="Unknown customer"),
    },
)
async def get_customer_sends(
    external_id: ExternalId,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
) -> PageOut[SendOut]:
    page = await run_in_threadpool(
        customer_sends_page, runtime.engine, external_id, cursor=cursor, limit=limit
    )
    page_headers(request, response, page.next_cursor)
    items = [SendOut.model_validate(send.model_dump()) for send in page.items]
    return PageOut[SendOut](items=items, next_cursor=page.next_cursor)


@router.get(
    "/v1/sends/{send_id}/message",
    response_model=MessageOut,
    summary="What a sent mail was: subject, headers, HTML and text, as archived",
    responses=answers(404, 422, s404="Not archived (not sent, or past the retention)"),
)
async def get_message(
    send_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], runtime: RuntimeDep
) -> MessageOut:
    mail = await run_in_threadpool(archived_message, runtime.engine, send_id)
    return MessageOut(
        subject=mail.subject, headers=list(mail.headers), html=mail.html, text=mail.text
    )
