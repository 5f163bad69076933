"""``/v1/suppressions``: read and edit the list of addresses no journey may mail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, EmailStr, Field

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.paging import LINK_HEADER, CursorQuery, PageOut, page_headers
from orchestrator.api.routing import StrictRoute
from orchestrator.recipients.reasons import MANUAL
from orchestrator.recipients.suppression import SuppressionEntry
from orchestrator.services.suppressions import (
    add_suppression,
    list_suppressions_page,
    remove_suppression,
)

router = APIRouter(
    route_class=StrictRoute,
    prefix="/v1/suppressions",
    dependencies=[ApiKeyAuth],
    responses=answers(401),
)


class SuppressionCreate(BaseModel):
    """An address to stop mailing; ``reason`` and ``source`` are kept for the audit trail."""

    email: EmailStr
    reason: str = Field(default=MANUAL, min_length=1, max_length=50)
    source: str = Field(default="api", max_length=200)


class SuppressionPublic(BaseModel):
    email: str
    reason: str
    source: str
    created_at: datetime

    @classmethod
    def of(cls, entry: SuppressionEntry) -> SuppressionPublic:
        return cls(
            email=entry.email, reason=entry.reason, source=entry.source, created_at=entry.created_at
        )


@router.get(
    "",
    response_model=PageOut[SuppressionPublic],
    summary="List suppressed addresses, newest first, a page at a time",
    responses={200: {"description": "A page of entries", "headers": LINK_HEADER}, **answers(422)},
)
async def list_entries(
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    reason: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> PageOut[SuppressionPublic]:
    """``reason`` filters (``unsubscribe``, ``bounce``, ``spam-report``, …)."""
    page = await run_in_threadpool(
        list_suppressions_page, runtime.engine, reason=reason, cursor=cursor, limit=limit
    )
    page_headers(request, response, page.next_cursor)
    items = [SuppressionPublic.of(e) for e in page.items]
    return PageOut[SuppressionPublic](items=items, next_cursor=page.next_cursor)


@router.post(
    "",
    response_model=SuppressionPublic,
    status_code=201,
    summary="Suppress an address",
    responses={
        200: {"description": "Already suppressed; the existing entry is returned"},
        **answers(413, 422),
    },
)
async def add_entry(
    body: SuppressionCreate, runtime: RuntimeDep, response: Response
) -> SuppressionPublic:
    added, entry = await run_in_threadpool(
        add_suppression,
        runtime.engine,
        body.email,
        reason=body.reason,
        source=body.source,
        clock=runtime.clock,
    )
    if not added:
        response.status_code = 200
    return SuppressionPublic.of(entry)


@router.delete(
    "/{email}",
    status_code=204,
    summary="Lift a suppression",
    responses=answers(404, 422, s404="The address is not suppressed"),
)
async def remove_entry(email: str, runtime: RuntimeDep) -> Response:
    await run_in_threadpool(remove_suppression, runtime.engine, email)
    return Response(status_code=204)
