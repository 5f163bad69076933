"""The console's first page: what needs a person now (my tasks, overdue ones, sends whose
outcome is unknown), and the overview: mails per day and what became of them, the backlog by
state and how late the oldest due mail is, open CSM tasks, and the health bands now and over
time. The numbers are the daily rollups' and whole counts (``services.analytics.overview``),
never the length of a list read for the page: the page never scans the sends, whatever their
number."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console import formatting
from orchestrator.console.charts import Chart, Series, bar_chart, line_chart
from orchestrator.console.deps import Page, needs
from orchestrator.console.i18n import N_
from orchestrator.services import analytics, task_inbox
from orchestrator.services.analytics import Overview

router = APIRouter()
MY_TASKS_SHOWN = 10

# The overview's lines, in the order they are drawn (the stylesheet's series-1 … series-6).
ACTIVITY = (
    ("sent", N_("Sent")),
    ("delivered", N_("Delivered")),
    ("opened", N_("Opened (unique)")),
    ("clicked", N_("Clicked")),
    ("bounced", N_("Bounced")),
    ("unsubscribed", N_("Unsubscribed")),
)
BACKLOG = (
    ("pending", N_("pending")),
    ("dispatched", N_("dispatched")),
    ("sending", N_("sending")),
    ("stalled", N_("stalled")),
    ("reconciling", N_("reconciling")),
    ("unknown", N_("unknown")),
    ("failed", N_("failed")),
)
BANDS = {"": N_("not scored"), "upsell": N_("upsell"), "tips": N_("tips"), "at_risk": N_("at risk")}


@router.get("/")
def overview(page: Annotated[Page, needs(Permission.READ)]) -> Response:
    assert page.session is not None
    runtime = page.runtime
    engine, now = runtime.engine, runtime.clock.now()
    me = page.session.email
    mine = task_inbox.inbox(engine, me=me, scope="mine", now=now, limit=MY_TASKS_SHOWN).tasks
    view = analytics.overview(engine, rules=runtime.analytics_rules(), clock=runtime.clock)
    return page.render(
        "home.html",
        mine=mine,
        mine_open=task_inbox.count_open(engine, me=me),
        team_open=view.open_tasks,
        overdue=view.overdue_tasks,
        unknown=view.backlog.unknown,
        o=view,
        due_lag=timedelta(seconds=round(view.backlog.due_lag_seconds)),
        charts_data=overview_charts(view, page.gettext, page.lang),
    )


def overview_charts(view: Overview, _: Callable[[str], str], lang: str) -> dict[str, Chart]:
    """The overview's four pictures, each with its data table."""
    days = [_moment(day.day) for day in view.days]
    activity = [
        Series(
            _(label), [(at, getattr(day, name)) for at, day in zip(days, view.days, strict=True)]
        )
        for name, label in ACTIVITY
    ]
    backlog = [(_(label), float(getattr(view.backlog, name))) for name, label in BACKLOG]
    bands = [(_band(band, _), float(count)) for band, count in sorted(view.bands.items())]
    names = sorted({band for day in view.band_trend for band in day.customers})
    trend = [
        Series(
            _band(band, _),
            [(_moment(day.day), day.customers.get(band, 0)) for day in view.band_trend],
        )
        for band in names
    ]
    count = lambda value: formatting.number(int(value), lang)  # noqa: E731
    return {
        "activity": line_chart(_("Mails per day"), activity, x_label=_short_day, y_label=count),
        "backlog": bar_chart(_("Backlog by state"), backlog, y_label=count),
        "bands": bar_chart(_("Customers by health band"), bands, y_label=count),
        "band_trend": line_chart(
            _("Health bands over time"), trend, x_label=_short_day, y_label=count
        ),
    }


def _band(band: str, _: Callable[[str], str]) -> str:
    return _(BANDS[band]) if band in BANDS else band


def _moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _short_day(value: object) -> str:
    return f"{value:%m-%d}" if isinstance(value, datetime) else str(value)
