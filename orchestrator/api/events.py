"""``POST /v1/events``: product usage events in, one or a batch of up to 1,000."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy.orm import Session

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import InvalidJson, InvalidRequest
from orchestrator.guards.strict_json import field_errors, parse_json
from orchestrator.runtime import Runtime
from orchestrator.usage.events import (
    MAX_BATCH,
    EventBatch,
    EventIn,
    EventsAccepted,
    ingest_events,
    usage_rules,
)

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))

_EVENT = body_schema(EventIn)
_BODY = {
    "anyOf": [
        _EVENT,
        {
            "type": "object",
            "properties": {
                "events": {"type": "array", "items": _EVENT, "minItems": 1, "maxItems": MAX_BATCH}
            },
            "required": ["events"],
            "additionalProperties": False,
        },
    ]
}


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventsAccepted,
    summary="Record product usage events",
    responses=answers(
        404,
        413,
        422,
        s404="Single event for an unknown customer",
        s422="A bad item or an unknown customer (`loc` names it): nothing of the batch stored",
    ),
    openapi_extra=json_body(_BODY),
)
async def post_events(
    request: Request, runtime: RuntimeDep, background: BackgroundTasks
) -> EventsAccepted:
    """All or nothing. An event whose ``id`` was stored before is counted as a duplicate and
    changes nothing, so retrying a request is safe."""
    events, batched = _parse(await request.body())
    accepted = await run_in_threadpool(_ingest, runtime, events, batched)
    if accepted.task_ids:
        background.add_task(runtime.notify_now, accepted.task_ids)
    return accepted


def _parse(body: bytes) -> tuple[list[EventIn], bool]:
    """A JSON object with ``events`` is a batch; any other object is one event."""
    try:
        data: Any = parse_json(body)
    except InvalidJson as exc:
        raise InvalidRequest(exc.errors) from None
    batched = isinstance(data, dict) and "events" in data
    try:
        if batched:
            return EventBatch.model_validate(data).events, True
        return [EventIn.model_validate(data)], False
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None


def _ingest(runtime: Runtime, events: list[EventIn], batched: bool) -> EventsAccepted:
    rules = usage_rules(runtime)
    with Session(runtime.engine) as session, session.begin():
        result = ingest_events(session, events, rules, runtime.clock.now(), batched=batched)
    return EventsAccepted(
        stored=len(result.stored), duplicates=result.duplicates, task_ids=result.task_ids
    )
