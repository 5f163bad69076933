"""Journeys: the list, each journey as a picture per tier with its funnel per step × tier ×
language for a date range (a table, a chart and a CSV download, read from the daily rollups),
each step's mail previewed per tier and language (in a sandboxed frame), and a test send of it
to oneself."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from orchestrator.accounts.roles import Permission
from orchestrator.console import formatting
from orchestrator.console.charts import Chart, Series, line_chart
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.console.i18n import N_
from orchestrator.console.journey_map import journey_map
from orchestrator.console.security import MAIL_FRAME_HEADERS
from orchestrator.errors import InvalidField, TemplateError
from orchestrator.journeys.model import ALL_TIERS
from orchestrator.services.analytics import Funnel, journey_funnel, journey_funnel_csv
from orchestrator.services.journey_catalog import version_overview
from orchestrator.services.previews import PREVIEW_LOCALES, find_step, preview_step
from orchestrator.services.test_sends import send_test

router = APIRouter(prefix="/journeys")


@router.get("")
def journeys(page: Annotated[Page, needs(Permission.READ)]) -> Response:
    listed = sorted(page.runtime.journeys.values(), key=lambda j: (j.trigger != "signup", j.id))
    return page.render("journeys.html", journeys=listed)


FromQuery = Annotated[str, Query(alias="from", max_length=10)]
ToQuery = Annotated[str, Query(alias="to", max_length=10)]
SegmentQuery = Annotated[str, Query(max_length=10)]
# The funnel's chart: what the mails of each step became, step after step.
FUNNEL_LINES = (
    ("sent", N_("Sent")),
    ("delivered", N_("Delivered")),
    ("opened", N_("Opened (unique)")),
    ("clicked", N_("Clicked")),
    ("converted", N_("Converted")),
)


@router.get("/{journey_id}")
def journey(
    page: Annotated[Page, needs(Permission.READ)],
    journey_id: str,
    tier: str = "tech",
    date_from: FromQuery = "",
    date_to: ToQuery = "",
    by_tier: SegmentQuery = "",
    by_locale: SegmentQuery = "",
) -> Response:
    found = page.runtime.journeys.get(journey_id)
    if found is None:
        raise HTTPException(status_code=404)
    chosen = tier if tier in ALL_TIERS else "tech"
    funnel = _funnel(page, journey_id, date_from, date_to, by_tier, by_locale)
    runtime = page.runtime
    settings = runtime.settings
    overview = version_overview(
        runtime.engine,
        settings.journeys_dir,
        settings.templates_dir,
        settings.default_locale,
        journey_id,
        runtime.clock.now(),
    )
    return page.render(
        "journey.html",
        j=found,
        overview=overview,
        map=journey_map(found, chosen),
        tiers=ALL_TIERS,
        tier=chosen,
        locales=PREVIEW_LOCALES,
        funnel=funnel,
        funnel_chart=funnel_chart(funnel, page),
        csv_query=_query(funnel),
    )


@router.get("/{journey_id}/funnel.csv")
def funnel_csv(
    page: Annotated[Page, needs(Permission.READ)],
    journey_id: str,
    date_from: FromQuery = "",
    date_to: ToQuery = "",
    by_tier: SegmentQuery = "",
    by_locale: SegmentQuery = "",
) -> Response:
    """The funnel shown, as CSV (a cell never starts a spreadsheet formula)."""
    runtime = page.runtime
    if journey_id not in runtime.journeys:
        raise HTTPException(status_code=404)
    text = journey_funnel_csv(
        runtime.engine,
        journey_id,
        _day("from", date_from),
        _day("to", date_to),
        tier=by_tier or None,
        locale=by_locale or None,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{journey_id}-funnel.csv"'},
    )


def _funnel(
    page: Page, journey_id: str, date_from: str, date_to: str, tier: str, locale: str
) -> Funnel:
    runtime = page.runtime
    if tier and tier not in ALL_TIERS:
        raise InvalidField("by_tier", "not a tier")
    return journey_funnel(
        runtime.engine,
        journey_id,
        _day("from", date_from),
        _day("to", date_to),
        tier=tier or None,
        locale=locale or None,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
    )


def _day(field: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, "not a date (YYYY-MM-DD)") from None


def _query(funnel: Funnel) -> str:
    """The funnel's range and filters as a query string (the CSV link shows the same)."""
    values = {"from": funnel.date_from.isoformat(), "to": funnel.date_to.isoformat()}
    if funnel.tier:
        values["by_tier"] = funnel.tier
    if funnel.locale:
        values["by_locale"] = funnel.locale
    return urlencode(values)


def funnel_chart(funnel: Funnel, page: Page) -> Chart:
    """Sent, delivered, opened, clicked and converted mails per step, in the journey's order."""
    steps = [step for step in funnel.steps if step.in_journey]
    names = [step.step_id for step in steps]
    series = [
        Series(
            page.gettext(label),
            [(index, getattr(step.counts, name)) for index, step in enumerate(steps)],
        )
        for name, label in FUNNEL_LINES
    ]
    return line_chart(
        page.gettext("Funnel per step"),
        series if steps else [],
        x_label=lambda x: names[int(x)] if isinstance(x, int | float) else str(x),
        y_label=lambda v: formatting.number(int(v), page.lang),
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
