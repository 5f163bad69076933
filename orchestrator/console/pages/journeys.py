"""Journeys: the list, each journey as a picture per tier, each step's mail previewed per tier
and language (in a sandboxed frame), and a test send of it to oneself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.console.journey_map import journey_map
from orchestrator.console.security import MAIL_FRAME_HEADERS
from orchestrator.errors import TemplateError
from orchestrator.journeys.model import ALL_TIERS
from orchestrator.services.previews import PREVIEW_LOCALES, find_step, preview_step
from orchestrator.services.test_sends import send_test

router = APIRouter(prefix="/journeys")


@router.get("")
def journeys(page: Annotated[Page, needs(Permission.READ)]) -> Response:
    listed = sorted(page.runtime.journeys.values(), key=lambda j: (j.trigger != "signup", j.id))
    return page.render("journeys.html", journeys=listed)


@router.get("/{journey_id}")
def journey(
    page: Annotated[Page, needs(Permission.READ)], journey_id: str, tier: str = "tech"
) -> Response:
    found = page.runtime.journeys.get(journey_id)
    if found is None:
        raise HTTPException(status_code=404)
    chosen = tier if tier in ALL_TIERS else "tech"
    return page.render(
        "journey.html",
        j=found,
        map=journey_map(found, chosen),
        tiers=ALL_TIERS,
        tier=chosen,
        locales=PREVIEW_LOCALES,
    )


@router.get("/{journey_id}/steps/{step_id}")
def step_preview(
    page: Annotated[Page, needs(Permission.READ)],
    journey_id: str,
    step_id: str,
    tier: str = "",
    locale: str = "",
) -> Response:
    journey, step = find_step(page.runtime.journeys, journey_id, step_id)
    chosen_tier = tier if tier in step.tiers else step.tiers[0]
    chosen_locale = locale if locale in PREVIEW_LOCALES else page.lang
    runtime = page.runtime
    preview, problem = None, None
    try:
        preview = preview_step(
            runtime.journeys,
            runtime.renderer,
            journey_id=journey.id,
            step_id=step.id,
            tier=chosen_tier,
            locale=chosen_locale,
            rules=runtime.preview_rules(),
            now=runtime.clock.now(),
        )
    except TemplateError as exc:
        problem = str(exc)
    return page.render(
        "preview.html",
        j=journey,
        step=step,
        tier=chosen_tier,
        locale=chosen_locale,
        locales=PREVIEW_LOCALES,
        preview=preview,
        problem=problem,
        status_code=200 if problem is None else 422,
    )


@router.get("/{journey_id}/steps/{step_id}/mail")
def step_mail(
    page: Annotated[Page, needs(Permission.READ)],
    journey_id: str,
    step_id: str,
    tier: str = "",
    locale: str = "",
) -> Response:
    """The mail's HTML alone, for the preview's sandboxed frame (its own, stricter CSP)."""
    runtime = page.runtime
    try:
        preview = preview_step(
            runtime.journeys,
            runtime.renderer,
            journey_id=journey_id,
            step_id=step_id,
            tier=tier,
            locale=locale,
            rules=runtime.preview_rules(),
            now=runtime.clock.now(),
        )
    except TemplateError:
        raise HTTPException(status_code=422) from None
    return HTMLResponse(preview.mail.html, headers=MAIL_FRAME_HEADERS)


@router.post("/{journey_id}/steps/{step_id}/test")
def test_send(
    page: Annotated[Page, needs(Permission.SEND_TESTS)],
    form: Posted,
    journey_id: str,
    step_id: str,
) -> Response:
    page.check_form(form)
    assert page.session is not None
    runtime = page.runtime
    send_test(
        runtime.engine,
        transport=runtime.transport,
        journeys=runtime.journeys,
        renderer=runtime.renderer,
        rules=runtime.preview_rules(),
        journey_id=journey_id,
        step_id=step_id,
        tier=form.required("tier", max_length=10),
        locale=form.required("locale", max_length=10),
        to=page.session.email,
        actor=page.actor,
        clock=runtime.clock,
    )
    return back(form.get("back", max_length=2000), "test_sent")
