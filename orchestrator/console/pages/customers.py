"""Customers: search, one customer's page, and the actions on their journeys."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from orchestrator.accounts.roles import Permission
from orchestrator.console import formatting
from orchestrator.console.charts import Series, line_chart
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.console.pages.ids import optional_id, parse_id
from orchestrator.console.security import BASE, MAIL_FRAME_HEADERS
from orchestrator.errors import InvalidField
from orchestrator.services import customer_directory, enrollment_control, stages
from orchestrator.services.archive import archived_message
from orchestrator.services.customer_directory import SEARCH_FIELDS, SearchField
from orchestrator.services.previews import SubjectRenderer

router = APIRouter()
PAGE_SIZE = 25


@router.get("/customers")
def search(
    page: Annotated[Page, needs(Permission.READ)],
    q: str = "",
    field: str = "any",
    after: str = "",
    after_id: str = "",
) -> Response:
    chosen: SearchField = next((f for f in SEARCH_FIELDS if f == field), "any")
    cursor_id = optional_id(after_id)
    cursor = (after, cursor_id) if cursor_id is not None else None
    found = customer_directory.search_customers(
        page.runtime.engine, q, chosen, after=cursor, limit=PAGE_SIZE
    )
    next_link = None
    if found.next_after is not None:
        value, last_id = found.next_after
        query = {"q": q, "field": chosen, "after": value, "after_id": last_id}
        next_link = f"{BASE}/customers?{urlencode(query)}"
    return page.render(
        "customers.html",
        q=q,
        field=chosen,
        fields=SEARCH_FIELDS,
        found=found.rows,
        next_link=next_link,
        first_page=cursor is None,
    )


@router.get("/customers/{external_id:path}")
def customer(page: Annotated[Page, needs(Permission.READ)], external_id: str) -> Response:
    runtime = page.runtime
    profile = customer_directory.customer_profile(
        runtime.engine,
        external_id,
        journeys=runtime.journeys,
        subject_of=SubjectRenderer(runtime.renderer, runtime.sender, runtime.clock.now()),
    )
    tz = formatting.zone(profile.timezone, runtime.settings.default_timezone)
    chart = line_chart(
        page.gettext("Health score"),
        [Series(page.gettext("Score"), [(p.at, p.score) for p in profile.health])],
        x_label=lambda at: formatting.moment(at, page.lang, tz, short=True),  # type: ignore[arg-type]
        y_label=lambda v: f"{v:.0f}",
        y_range=(0, 100),
    )
    latest = profile.health[-1] if profile.health else None
    lifecycle = runtime.usage_rules().lifecycle
    return page.render(
        "customer.html",
        c=profile,
        health_chart=chart,
        latest_health=latest,
        stages=[(s.id, s.name(page.lang)) for s in lifecycle.stages] if lifecycle else [],
    )


@router.post("/customers/{external_id:path}/stage")
def set_stage(
    page: Annotated[Page, needs(Permission.WORK_CUSTOMERS)], form: Posted, external_id: str
) -> Response:
    """A CSM sets the lifecycle stage by hand (pinned: the rules leave it alone)."""
    page.check_form(form)
    try:
        choice = stages.StageChoice(
            stage=form.required("stage", max_length=40),
            pinned=form.get("pinned", max_length=10) == "on",
            reason=form.get("reason", max_length=500),
        )
    except ValidationError:
        raise InvalidField("stage", "not a stage of the lifecycle") from None
    runtime = page.runtime
    stages.set_stage(
        runtime.engine,
        external_id,
        choice,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        actor=page.actor,
    )
    return back(form.get("back", max_length=2000), "stage_set")


@router.post("/enrollments/{enrollment_id}/{action}")
def control_enrollment(
    page: Annotated[Page, needs(Permission.CONTROL_ENROLLMENTS)],
    form: Posted,
    enrollment_id: str,
    action: str,
) -> Response:
    page.check_form(form)
    actions = {
        "pause": (enrollment_control.pause_enrollment, "paused"),
        "resume": (enrollment_control.resume_enrollment, "resumed"),
        "end": (enrollment_control.end_enrollment, "ended"),
    }
    if action not in actions:
        raise HTTPException(status_code=404)
    run, done = actions[action]
    run(page.runtime.engine, parse_id(enrollment_id), actor=page.actor, clock=page.runtime.clock)
    return back(form.get("back", max_length=2000), done)


@router.post("/sends/{send_id}/resend")
def resend(
    page: Annotated[Page, needs(Permission.WORK_CUSTOMERS)], form: Posted, send_id: str
) -> Response:
    page.check_form(form)
    enrollment_control.resend_failed_step(
        page.runtime.engine, parse_id(send_id), actor=page.actor, clock=page.runtime.clock
    )
    return back(form.get("back", max_length=2000), "resent")


@router.get("/sends/{send_id}/message")
def sent_message(page: Annotated[Page, needs(Permission.READ)], send_id: str) -> Response:
    """A sent mail as it went out (the message archive): subject, headers, text, and the HTML
    in a sandboxed frame. Not archived (before the archive, or past its retention): 404."""
    mail = archived_message(page.runtime.engine, parse_id(send_id))
    return page.render("message.html", send_id=parse_id(send_id), mail=mail)


@router.get("/sends/{send_id}/message.html")
def sent_message_html(page: Annotated[Page, needs(Permission.READ)], send_id: str) -> Response:
    """The archived HTML alone, for the frame (its own, stricter CSP: no script, no request)."""
    mail = archived_message(page.runtime.engine, parse_id(send_id))
    return HTMLResponse(mail.html, headers=MAIL_FRAME_HEADERS)
