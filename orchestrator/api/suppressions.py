"""``/v1/suppressions``: read and edit the list of addresses no journey may mail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy.orm import Session

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import NotSuppressed
from orchestrator.guards.bounds import DB_INT_MAX
from orchestrator.recipients.suppression import (
    MANUAL,
    SuppressionEntry,
    find_suppression,
    list_suppressions,
    suppress,
    unsuppress,
)
from orchestrator.runtime import Runtime

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
    response_model=list[SuppressionPublic],
    summary="List suppressed addresses",
    responses=answers(422),
)
async def list_entries(
    runtime: RuntimeDep,
    reason: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> list[SuppressionPublic]:
    """Newest first; ``reason`` filters (``unsubscribe``, ``bounce``, ``spam-report``, …)."""

    def query() -> list[SuppressionEntry]:
        with Session(runtime.engine) as session:
            return list_suppressions(session, reason=reason, limit=limit, offset=offset)

    return [SuppressionPublic.of(e) for e in await run_in_threadpool(query)]


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
    added, entry = await run_in_threadpool(_add, runtime, body)
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
    await run_in_threadpool(_remove, runtime, email)
    return Response(status_code=204)


def _add(runtime: Runtime, body: SuppressionCreate) -> tuple[bool, SuppressionEntry]:
    with Session(runtime.engine) as session, session.begin():
        added = suppress(session, body.email, body.reason, body.source, runtime.clock.now())
        entry = find_suppression(session, body.email)
    assert entry is not None
    return added, entry


def _remove(runtime: Runtime, email: str) -> None:
    with Session(runtime.engine) as session, session.begin():
        if not unsuppress(session, email):
            raise NotSuppressed(email)
