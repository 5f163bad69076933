"""Operations: the suppression list, sends whose outcome is unknown, provider events."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.console.pages.ids import parse_id
from orchestrator.console.security import BASE
from orchestrator.delivery.unknown_sends import Settlement
from orchestrator.errors import InvalidField
from orchestrator.services import operations

router = APIRouter(prefix="/operations")


@router.get("/suppressions")
def suppressions(
    page: Annotated[Page, needs(Permission.READ)], q: str = "", after: str = ""
) -> Response:
    found = operations.search_suppressions(page.runtime.engine, q, after=after[:320] or None)
    next_link = None
    if found.next_after is not None:
        next_link = (
            f"{BASE}/operations/suppressions?{urlencode({'q': q, 'after': found.next_after})}"
        )
    return page.render("suppressions.html", q=q, entries=found.entries, next_link=next_link)


@router.post("/suppressions")
def add_suppression(
    page: Annotated[Page, needs(Permission.MANAGE_SUPPRESSIONS)], form: Posted
) -> Response:
    page.check_form(form)
    added = operations.suppress_address(
        page.runtime.engine, form.required("email"), actor=page.actor, clock=page.runtime.clock
    )
    return back(form.get("back", max_length=2000), "suppressed" if added else "already")


@router.post("/suppressions/remove")
def remove_suppression(
    page: Annotated[Page, needs(Permission.MANAGE_SUPPRESSIONS)], form: Posted
) -> Response:
    page.check_form(form)
    operations.lift_suppression(
        page.runtime.engine, form.required("email"), actor=page.actor, clock=page.runtime.clock
    )
    return back(form.get("back", max_length=2000), "unsuppressed")


@router.get("/unknown-sends")
def unknown_sends(page: Annotated[Page, needs(Permission.READ)]) -> Response:
    sends = operations.unknown_sends(page.runtime.engine, limit=200)
    return page.render("unknown_sends.html", sends=sends, settlements=[s.value for s in Settlement])


@router.post("/unknown-sends/{send_id}/settle")
def settle(
    page: Annotated[Page, needs(Permission.SETTLE_SENDS)], form: Posted, send_id: str
) -> Response:
    page.check_form(form)
    try:
        settlement = Settlement(form.required("settlement", max_length=20))
    except ValueError:
        raise InvalidField("settlement", "sent, resend or skip") from None
    operations.settle_send(
        page.runtime.engine,
        parse_id(send_id),
        settlement,
        form.get("note", max_length=operations.MAX_NOTE + 100),
        actor=page.actor,
        clock=page.runtime.clock,
    )
    return back(form.get("back", max_length=2000), "settled")


@router.get("/provider-events")
def provider_events(page: Annotated[Page, needs(Permission.READ)], type: str = "") -> Response:
    events = operations.recent_provider_events(page.runtime.engine, event_type=type[:40] or None)
    return page.render("provider_events.html", events=events, event_type=type[:40])
