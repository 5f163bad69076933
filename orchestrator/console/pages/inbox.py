"""The CSM inbox and one task's page: assign, add a note, close."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.console.pages.ids import optional_id, parse_id
from orchestrator.console.security import BASE
from orchestrator.services import accounts, task_inbox
from orchestrator.services.task_inbox import Scope, TaskState

router = APIRouter()
PAGE_SIZE = 100


@router.get("/inbox")
def inbox(
    page: Annotated[Page, needs(Permission.READ)],
    scope: str = "mine",
    status: str = "open",
    kind: str = "",
    after: str = "",
) -> Response:
    assert page.session is not None
    chosen_scope: Scope = "team" if scope == "team" else "mine"
    chosen_status: TaskState = "closed" if status == "closed" else "open"
    chosen_kind = kind[:50]
    found = task_inbox.inbox(
        page.runtime.engine,
        me=page.session.email,
        scope=chosen_scope,
        status=chosen_status,
        kind=chosen_kind or None,
        now=page.runtime.clock.now(),
        limit=PAGE_SIZE,
        after=optional_id(after),
    )
    next_link = None
    if found.next_after is not None:
        query = {"scope": chosen_scope, "status": chosen_status, "kind": chosen_kind}
        next_link = f"{BASE}/inbox?{urlencode({**query, 'after': found.next_after})}"
    return page.render(
        "inbox.html",
        tasks=found.tasks,
        kinds=found.kinds,
        scope=chosen_scope,
        status=chosen_status,
        kind=chosen_kind,
        next_link=next_link,
    )


@router.get("/tasks/{task_id}")
def task(page: Annotated[Page, needs(Permission.READ)], task_id: str) -> Response:
    found, notes = task_inbox.task_detail(
        page.runtime.engine, parse_id(task_id), now=page.runtime.clock.now()
    )
    assignable = accounts.active_user_emails(page.runtime.engine)
    return page.render("task.html", task=found, notes=notes, assignable=assignable)


@router.post("/tasks/{task_id}/assign")
def assign(
    page: Annotated[Page, needs(Permission.WORK_TASKS)], form: Posted, task_id: str
) -> Response:
    page.check_form(form)
    assert page.session is not None
    assignee = form.required("assignee")
    task_inbox.assign_task(
        page.runtime.engine,
        parse_id(task_id),
        page.session.email if assignee == "me" else assignee,
        actor=page.actor,
        clock=page.runtime.clock,
    )
    return back(form.get("back", max_length=2000), "assigned")


@router.post("/tasks/{task_id}/note")
def note(
    page: Annotated[Page, needs(Permission.WORK_TASKS)], form: Posted, task_id: str
) -> Response:
    page.check_form(form)
    task_inbox.add_note(
        page.runtime.engine,
        parse_id(task_id),
        form.get("note", max_length=task_inbox.MAX_NOTE + 100),
        actor=page.actor,
        clock=page.runtime.clock,
    )
    return back(form.get("back", max_length=2000), "noted")


@router.post("/tasks/{task_id}/close")
def close(
    page: Annotated[Page, needs(Permission.WORK_TASKS)], form: Posted, task_id: str
) -> Response:
    page.check_form(form)
    task_inbox.close_inbox_task(
        page.runtime.engine,
        parse_id(task_id),
        actor=page.actor,
        clock=page.runtime.clock,
        journeys=page.runtime.journeys,
    )
    return back(form.get("back", max_length=2000), "closed")
