"""``/v1/webhooks``: integrators' endpoints, the delivery log and replay (the CLI's
``stepmail webhooks`` does the same from a shell)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import InvalidInput, InvalidRequest
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.services.webhooks import (
    add_endpoint,
    list_deliveries,
    list_endpoints,
    replay_message,
    set_endpoint_enabled,
)
from orchestrator.webhooks.events import EVENT_TYPES, EventType

router = APIRouter(
    route_class=StrictRoute,
    prefix="/v1/webhooks",
    dependencies=[ApiKeyAuth],
    responses=answers(401),
)
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


class EndpointCreate(BaseModel):
    """Where to post and which events; ``*`` subscribes to every event (stored as their list)."""

    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    events: list[EventType | Literal["*"]] = Field(min_length=1, max_length=len(EVENT_TYPES) + 1)
    description: str = Field(default="", max_length=200)


class EndpointPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    description: str


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="The signing secret (whsec_…): shown this once")


class AttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    response: str
    error: str | None


class DeliveryPublic(BaseModel):
    id: int
    endpoint_id: int
    event_id: str = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    state: Literal["pending", "delivering", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    log: list[AttemptPublic]


class Replayed(BaseModel):
    id: int
    state: str
    replayed: bool = Field(description="false while an attempt is under way")


@router.get(
    "",
    response_model=list[EndpointPublic],
    summary="List webhook endpoints",
    responses=answers(422),
)
async def get_endpoints(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(list_endpoints, runtime.engine)


@router.post(
    "",
    response_model=EndpointCreated,
    status_code=201,
    summary="Subscribe a URL to events",
    responses=answers(413, 422),
)
async def post_endpoint(body: EndpointCreate, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        return await run_in_threadpool(
            add_endpoint,
            runtime.engine,
            body.url,
            list(body.events),
            rules=runtime.outgoing_webhook_rules(),
            clock=runtime.clock,
            description=body.description,
        )
    except InvalidInput as exc:  # "url: …" or "events: …": the field at fault
        field, _, message = str(exc).partition(": ")
        raise InvalidRequest(
            [{"type": "value_error", "loc": ["body", field], "msg": message or str(exc)}]
        ) from None


@router.post(
    "/{endpoint_id}/disable",
    response_model=EndpointPublic,
    summary="Stop delivering to an endpoint (its queue waits)",
    responses=answers(404, 422, s404="No such endpoint"),
)
async def post_disable(endpoint_id: RowId, runtime: RuntimeDep) -> dict[str, Any]:
    return await run_in_threadpool(set_endpoint_enabled, runtime.engine, endpoint_id, False)


@router.post(
    "/{endpoint_id}/enable",
    response_model=EndpointPublic,
    summary="Deliver to an endpoint again, its waiting queue first",
    responses=answers(404, 422, s404="No such endpoint"),
)
async def post_enable(endpoint_id: RowId, runtime: RuntimeDep) -> dict[str, Any]:
    return await run_in_threadpool(set_endpoint_enabled, runtime.engine, endpoint_id, True)


@router.get(
    "/deliveries",
    response_model=list[DeliveryPublic],
    summary="The delivery log, newest message first",
    responses=answers(422),
)
async def get_deliveries(
    runtime: RuntimeDep,
    endpoint_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
    state: Annotated[
        Literal["pending", "delivering", "delivered", "failed"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(
        list_deliveries, runtime.engine, endpoint_id=endpoint_id, state=state, limit=limit
    )


@router.post(
    "/deliveries/{message_id}/replay",
    response_model=Replayed,
    summary="Deliver a message again (same webhook-id), before its endpoint's newer ones",
    responses=answers(404, 422, s404="No such message"),
)
async def post_replay(message_id: RowId, runtime: RuntimeDep) -> dict[str, Any]:
    return await run_in_threadpool(replay_message, runtime.engine, message_id, clock=runtime.clock)
