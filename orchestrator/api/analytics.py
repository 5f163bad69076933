"""The read API of journey analytics: ``GET /v1/journeys``, ``GET /v1/journeys/{id}/funnel``
(JSON, or CSV with ``Accept: text/csv`` or the ``.csv`` path) and ``GET /v1/overview``. Each is
one service call (:mod:`orchestrator.services.analytics`) reading the daily rollups."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, BeforeValidator, Field

from orchestrator.analytics.funnel import Funnel, FunnelCounts, SegmentFunnel
from orchestrator.analytics.overview import Overview
from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.paging import LINK_HEADER, CursorQuery, PageOut, page_headers
from orchestrator.api.routing import StrictRoute
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import (
    JourneySummary,
    journey_funnel,
    journey_funnel_csv,
    journey_list,
    overview,
)

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))

JourneyId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: object) -> object:
    """Only ``YYYY-MM-DD``: pydantic would also take a number as seconds since 1970."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


FromQuery = Annotated[
    date | None,
    BeforeValidator(_iso_day),
    Query(alias="from", description="First day (YYYY-MM-DD); default: `to` − 29"),
]
ToQuery = Annotated[
    date | None,
    BeforeValidator(_iso_day),
    Query(alias="to", description="Last day, included; default: today"),
]
TierQuery = Annotated[Literal["high", "low", "tech"] | None, Query()]
LocaleQuery = Annotated[str | None, Query(max_length=35, description="A language, e.g. ja")]
CSV = "text/csv"
_FUNNEL_ANSWERS = {
    200: {
        "description": "The funnel; CSV with `Accept: text/csv`",
        "content": {CSV: {"schema": {"type": "string"}}},
    },
    **answers(404, 422, s404="No such journey"),
}


class CountsOut(BaseModel):
    """The numbers of one slice (README, "Journey analytics", says what each one counts)."""

    enrolled: int
    due: int
    sent: int
    skipped: int
    skipped_by_reason: dict[str, int] = Field(
        description="tier, suppressed, opted_out, condition, other"
    )
    missed: int
    failed: int
    unknown: int
    cancelled: int
    delivered: int
    opened: int
    clicked: int = Field(description="Unique: mails with a click not flagged as a scanner's")
    scanner_clicked: int = Field(description="Mails with a click flagged as a scanner's")
    bounced: int
    unsubscribed: int
    converted: int

    @classmethod
    def of(cls, counts: FunnelCounts) -> CountsOut:
        return cls(**counts.as_dict())


class SegmentOut(BaseModel):
    tier: str
    locale: str
    counts: CountsOut

    @classmethod
    def of(cls, segment: SegmentFunnel) -> SegmentOut:
        return cls(tier=segment.tier, locale=segment.locale, counts=CountsOut.of(segment.counts))


class StepOut(BaseModel):
    step_id: str
    in_journey: bool
    counts: CountsOut
    segments: list[SegmentOut]


class FunnelOut(BaseModel):
    journey_id: str
    journey_name: str
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    timezone: str
    tier: str | None
    locale: str | None
    attribution_window_days: int
    journey: CountsOut = Field(description="Enrollments begun in the range, and conversions")
    journey_segments: list[SegmentOut]
    steps: list[StepOut]

    @classmethod
    def of(cls, funnel: Funnel) -> FunnelOut:
        return cls(
            journey_id=funnel.journey_id,
            journey_name=funnel.journey_name,
            date_from=funnel.date_from,
            date_to=funnel.date_to,
            timezone=funnel.timezone,
            tier=funnel.tier,
            locale=funnel.locale,
            attribution_window_days=funnel.attribution_window_days,
            journey=CountsOut.of(funnel.journey),
            journey_segments=[SegmentOut.of(s) for s in funnel.journey_segments],
            steps=[
                StepOut(
                    step_id=step.step_id,
                    in_journey=step.in_journey,
                    counts=CountsOut.of(step.counts),
                    segments=[SegmentOut.of(s) for s in step.segments],
                )
                for step in funnel.steps
            ],
        )


class JourneyOut(BaseModel):
    id: str
    name: str
    description: str
    trigger: str
    goal: str | None
    steps: list[str]
    track_clicks: bool
    enrolled_30d: int
    sent_30d: int
    converted_30d: int

    @classmethod
    def of(cls, journey: JourneySummary) -> JourneyOut:
        return cls(**{**journey.__dict__, "steps": list(journey.steps)})


@router.get(
    "/v1/journeys",
    response_model=PageOut[JourneyOut],
    summary="List journeys with their last 30 days, a page at a time",
    responses={200: {"description": "A page of journeys", "headers": LINK_HEADER}, **answers(422)},
)
async def get_journeys(
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> PageOut[JourneyOut]:
    page = await run_in_threadpool(
        journey_list,
        runtime.engine,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
        cursor=cursor,
        limit=limit,
    )
    page_headers(request, response, page.next_cursor)
    return PageOut[JourneyOut](
        items=[JourneyOut.of(j) for j in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/v1/journeys/{journey_id}/funnel",
    response_model=FunnelOut,
    response_model_by_alias=True,
    summary="A journey's funnel per step × tier × language for a date range",
    responses=_FUNNEL_ANSWERS,
)
async def get_funnel(
    journey_id: JourneyId,
    runtime: RuntimeDep,
    request: Request,
    date_from: FromQuery = None,
    date_to: ToQuery = None,
    tier: TierQuery = None,
    locale: LocaleQuery = None,
) -> Response | FunnelOut:
    if _wants_csv(request):
        return await _csv(runtime, journey_id, date_from, date_to, tier, locale)
    funnel = await run_in_threadpool(
        journey_funnel,
        runtime.engine,
        journey_id,
        date_from,
        date_to,
        tier=tier,
        locale=locale,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
    )
    return FunnelOut.of(funnel)


@router.get(
    "/v1/journeys/{journey_id}/funnel.csv",
    response_class=Response,
    summary="The same funnel as CSV",
    responses={
        200: {"description": "The funnel as CSV", "content": {CSV: {"schema": {"type": "string"}}}},
        **answers(404, 422, s404="No such journey"),
    },
)
async def get_funnel_csv(
    journey_id: JourneyId,
    runtime: RuntimeDep,
    date_from: FromQuery = None,
    date_to: ToQuery = None,
    tier: TierQuery = None,
    locale: LocaleQuery = None,
) -> Response:
    return await _csv(runtime, journey_id, date_from, date_to, tier, locale)


async def _csv(
    runtime: Runtime,
    journey_id: str,
    date_from: date | None,
    date_to: date | None,
    tier: str | None,
    locale: str | None,
) -> Response:
    text = await run_in_threadpool(
        journey_funnel_csv,
        runtime.engine,
        journey_id,
        date_from,
        date_to,
        tier=tier,
        locale=locale,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
    )
    filename = f"{journey_id}-funnel.csv"
    return Response(
        text,
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _wants_csv(request: Request) -> bool:
    """``Accept: text/csv`` (preferred over JSON, or alone) asks for CSV."""
    accept = request.headers.get("accept", "").lower()
    return CSV in accept and "application/json" not in accept.split(CSV)[0]


class DayOut(BaseModel):
    day: date
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    unsubscribed: int
    converted: int


class BacklogOut(BaseModel):
    pending: int
    dispatched: int
    sending: int
    stalled: int
    reconciling: int
    unknown: int
    failed: int
    due_now: int
    oldest_due_at: str | None
    due_lag_seconds: float


class BandDayOut(BaseModel):
    day: date
    customers: dict[str, int]


class OverviewOut(BaseModel):
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    timezone: str
    days: list[DayOut]
    backlog: BacklogOut
    open_tasks: int
    overdue_tasks: int
    bands: dict[str, int] = Field(
        description="Customers per health band ('' = no score) in the latest snapshot, which "
        "the scheduler takes every five minutes (empty before the first)"
    )
    bands_as_of: datetime | None = Field(description="When that snapshot was taken")
    band_trend: list[BandDayOut]
    uncounted: int = Field(description="Rows the rollup job has still to count (up to 10,001)")

    @classmethod
    def of(cls, view: Overview) -> OverviewOut:
        backlog = view.backlog.__dict__ | {
            "oldest_due_at": view.backlog.oldest_due_at.isoformat()
            if view.backlog.oldest_due_at
            else None
        }
        return cls(
            date_from=view.date_from,
            date_to=view.date_to,
            timezone=view.timezone,
            days=[DayOut(**day.__dict__) for day in view.days],
            backlog=BacklogOut(**backlog),
            open_tasks=view.open_tasks,
            overdue_tasks=view.overdue_tasks,
            bands=view.bands,
            bands_as_of=view.bands_as_of,
            band_trend=[BandDayOut(day=b.day, customers=b.customers) for b in view.band_trend],
            uncounted=view.uncounted,
        )


@router.get(
    "/v1/overview",
    response_model=OverviewOut,
    response_model_by_alias=True,
    summary="Mails per day, the backlog, due lag, open tasks and health bands",
    responses=answers(422),
)
async def get_overview(
    runtime: RuntimeDep,
    date_from: FromQuery = None,
    date_to: ToQuery = None,
) -> OverviewOut:
    view = await run_in_threadpool(
        overview,
        runtime.engine,
        date_from,
        date_to,
        rules=runtime.analytics_rules(),
        clock=runtime.clock,
    )
    return OverviewOut.of(view)
