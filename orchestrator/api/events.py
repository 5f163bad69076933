"""``POST /v1/events``: product usage events in, one or a batch of up to 1,000."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.deps import ApiKeyAuth
from orchestrator.api.direct_route import DirectRoute
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.runtime import Runtime
from orchestrator.services.events import track_events
from orchestrator.usage.events import MAX_BATCH, EventIn, EventsAccepted, parse_event_body

router = APIRouter(route_class=DirectRoute, dependencies=[ApiKeyAuth], responses=answers(401))

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
async def post_events(request: Request) -> Response:
    """All or nothing. An event whose ``id`` was stored before is counted as a duplicate and
    changes nothing, so retrying a request is safe."""
    runtime: Runtime = request.app.state.runtime
    submission = parse_event_body(await request.body())
    background = BackgroundTasks()
    accepted = await run_in_threadpool(
        track_events,
        runtime.engine,
        submission,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=lambda task_ids: background.add_task(runtime.notify_now, task_ids),
    )
    return Response(
        accepted.model_dump_json(), 202, media_type="application/json", background=background
    )
