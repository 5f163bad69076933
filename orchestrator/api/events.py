"""``POST /v1/events``: product usage events in, one or a batch of up to 1,000."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.background import BackgroundTask

from orchestrator.api.coalescer import Coalescer
from orchestrator.api.deps import ApiKeyAuth
from orchestrator.api.direct_route import DirectRoute
from orchestrator.api.openapi import answers, body_schema, json_body
from orchestrator.runtime import Runtime
from orchestrator.services.event_groups import track_event_group
from orchestrator.services.events import track_events
from orchestrator.usage.events import (
    MAX_BATCH,
    EventIn,
    EventsAccepted,
    EventSubmission,
    parse_event_body,
)

# Requests of at most this many events wait for each other (see orchestrator.api.coalescer);
# a group holds at most GROUP_REQUESTS requests. A larger batch is its own transaction.
GROUPED_UP_TO = 10
GROUP_REQUESTS = 100
# A larger body is read (parsed, validated) and its events tracked in one of BATCHES_AT_ONCE
# slots, shared out among the API's processes (`stepmail api --workers N`: each has
# BATCHES_AT_ONCE / N, rounded up); the others wait with their body as bytes, so that a burst
# of large bodies holds at most this many batches' models and rows (~1,000 models each) at
# once. The service runs in Python, one thread at a time, so the slots are there to keep the
# cores busy: while one batch runs Python, the others wait for PostgreSQL (their statements,
# their commit, or the locks of customers another batch holds). With four, the bench
# machine's two cores sat ~17% idle; with six 11-16%; with ten 9-11%, and more events/s in
# six pairs of nine, with no more CPU a batch: young collections have been rare since session
# 13, so the batches in flight no longer cost scans (bench/README, "Session 13", "Session
# 25"). The count is the database's to bear, not a process's: two processes of ten each cost
# PostgreSQL a tenth to a fifth more CPU a batch than one of ten, and fewer events/s in four
# pairs of four; two of five gave more events/s than one of ten in thirteen pairs of
# seventeen, and than two of ten in four of four (bench/README, "Session 32").
# 16 kB is ~150 events without properties: more than a grouped request usually sends, and a
# grouped request over it just leaves its slot once read. Processes started one by one
# cannot know of each other: ``STEPMAIL_API_BATCH_SLOTS`` gives each its share.
BATCHES_AT_ONCE = 10
GATED_FROM_BYTES = 16_384

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
    body = await request.body()
    if len(body) <= GATED_FROM_BYTES:
        submission = parse_event_body(body)
    else:
        slots: asyncio.Semaphore = request.app.state.batch_slots
        async with slots:
            submission = parse_event_body(body)
            if len(submission.events) > GROUPED_UP_TO:
                return _answer(runtime, await _track_alone(runtime, submission))
        # a few events in a large body: out of its slot, it waits for its group below
    if len(submission.events) <= GROUPED_UP_TO:
        groups: Coalescer[EventSubmission, EventsAccepted] = request.app.state.event_groups
        return _answer(runtime, await groups.submit(submission))
    return _answer(runtime, await _track_alone(runtime, submission))


def _answer(runtime: Runtime, accepted: EventsAccepted) -> Response:
    background = None
    if accepted.task_ids:
        background = BackgroundTask(runtime.notify_now, accepted.task_ids)
    return Response(
        accepted.model_dump_json(), 202, media_type="application/json", background=background
    )


async def _track_alone(runtime: Runtime, submission: EventSubmission) -> EventsAccepted:
    """A batch of more than GROUPED_UP_TO events: its own transaction."""
    return await run_in_threadpool(
        track_events,
        runtime.engine,
        submission,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=lambda _task_ids: None,  # in the answer, notified by the route
    )


def batch_slots(processes: int = 1, configured: int | None = None) -> asyncio.Semaphore:
    """The app's slots for large bodies: ``configured`` (``STEPMAIL_API_BATCH_SLOTS``), else
    its share of BATCHES_AT_ONCE as one of ``processes`` API processes."""
    return asyncio.Semaphore(configured or slots_per_process(processes))


def slots_per_process(processes: int) -> int:
    """BATCHES_AT_ONCE shared out among ``processes``, rounded up (so at least one each)."""
    return -(-BATCHES_AT_ONCE // max(1, processes))


def event_groups(runtime: Runtime) -> Coalescer[EventSubmission, EventsAccepted]:
    """The app's coalescer of small event requests (one per API process)."""

    def run(submissions: Sequence[EventSubmission]) -> list[EventsAccepted | Exception]:
        rules = runtime.usage_rules()
        return track_event_group(runtime.engine, submissions, rules=rules, clock=runtime.clock)

    return Coalescer(run, kind="event", max_group=GROUP_REQUESTS, in_flight=1)
