"""``GET /v1/tasks`` and ``POST /v1/tasks/{id}/close``: the CSM's to-do list."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.paging import LINK_HEADER, CursorQuery, PageOut, page_headers
from orchestrator.api.routing import StrictRoute
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.handoff.tasks import TaskView
from orchestrator.services.tasks import close_task, list_tasks_page

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))


@router.get(
    "/v1/tasks",
    response_model=PageOut[TaskView],
    summary="List CSM tasks, soonest due first, a page at a time",
    responses={200: {"description": "A page of tasks", "headers": LINK_HEADER}, **answers(422)},
)
async def get_tasks(
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    status: Annotated[Literal["open", "closed", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> PageOut[TaskView]:
    chosen = None if status == "all" else status
    page = await run_in_threadpool(
        list_tasks_page, runtime.engine, status=chosen, cursor=cursor, limit=limit
    )
    page_headers(request, response, page.next_cursor)
    return PageOut[TaskView](items=page.items, next_cursor=page.next_cursor)


@router.post(
    "/v1/tasks/{task_id}/close",
    response_model=TaskView,
    summary="Close a task (the mails it held are released or cancelled, as their journey says)",
    responses=answers(404, 422, s404="No such task"),
)
async def post_close(
    task_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], runtime: RuntimeDep
) -> TaskView:
    return await run_in_threadpool(
        close_task, runtime.engine, task_id, journeys=runtime.journeys, clock=runtime.clock
    )
