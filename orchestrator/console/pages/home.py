"""The console's first page: what needs a person now (my tasks, overdue ones, sends whose
outcome is unknown), and the place the overview metrics will take."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, needs
from orchestrator.services import operations, task_inbox

router = APIRouter()


@router.get("/")
def overview(page: Annotated[Page, needs(Permission.READ)]) -> Response:
    assert page.session is not None
    engine, now = page.runtime.engine, page.runtime.clock.now()
    mine = task_inbox.inbox(engine, me=page.session.email, scope="mine", now=now).tasks
    team = task_inbox.inbox(engine, me=page.session.email, scope="team", now=now).tasks
    return page.render(
        "home.html",
        mine=mine,
        team_open=len(team),
        overdue=sum(task.overdue for task in team),
        unknown=len(operations.unknown_sends(engine, limit=100)),
    )
