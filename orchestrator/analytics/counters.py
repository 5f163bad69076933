"""What one row counts for in the rollups: the rules, pure. The rollup job says them in SQL
(:mod:`orchestrator.analytics.counting_sql`, built from the tables here), the tests' recount
from scratch says them in Python with the functions here, and the two must agree.

A scheduled send counts once, under the day its outcome was decided (a sent mail: the day it
was sent), the tier and language it was counted under, and its step: as ``sent``, a skip by
kind, ``missed``, ``failed``, ``unknown`` or ``cancelled``. A sent mail also counts what became
of it (its :class:`~orchestrator.journeys.states.Engagement` bits), under the same day: funnels
answer "of the mails sent in these days, how many were delivered, opened, clicked, converted".
An enrollment counts as ``enrolled`` under the day it began and, once converted, as
``converted`` under that same day (step ``''``, the journey's own row).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from orchestrator.journeys.states import COUNTED_SEND_STATES, Engagement, SendState

COUNTERS = (
    "enrolled",
    "sent",
    "skipped_tier",
    "skipped_suppressed",
    "skipped_opted_out",
    "skipped_condition",
    "skipped_other",
    "missed",
    "failed",
    "unknown",
    "cancelled",
    "delivered",
    "opened",
    "clicked",
    "scanner_clicked",
    "bounced",
    "unsubscribed",
    "converted",
)
SKIP_KINDS = ("tier", "suppressed", "opted_out", "condition", "other")
JOURNEY_ROW = ""  # the step id of a journey's own counters (enrolled, converted)
ENROLLED, CONVERTED = 1, 2  # enrollment.counted bits
_COUNTED = frozenset(state.value for state in COUNTED_SEND_STATES)
# How the send path words each kind of skip (journeys/decide.py), by the start of its reason.
SKIP_PREFIXES = (
    ("step is not for tier", "tier"),
    ("address suppressed", "suppressed"),
    ("customer opted out", "opted_out"),
    ("condition false", "condition"),
)
ENGAGEMENT_COUNTERS = tuple(
    (int(bit), name)  # plain ints: IntFlag's & is slow, and this runs per counted row
    for bit, name in (
        (Engagement.DELIVERED, "delivered"),
        (Engagement.OPENED, "opened"),
        (Engagement.CLICKED, "clicked"),
        (Engagement.SCANNED, "scanner_clicked"),
        (Engagement.BOUNCED, "bounced"),
        (Engagement.UNSUBSCRIBED, "unsubscribed"),
        (Engagement.CONVERTED, "converted"),
    )
)

Counts = Mapping[str, int]


def counted_outcome(state: str) -> str:
    """The state as analytics counts it: '' for a row still on its way (or held)."""
    return state if state in _COUNTED else ""


def skip_kind(reason: str | None) -> str:
    """Why a step was skipped, as the funnel groups it: tier, suppressed, opted_out,
    condition or other (a removed step, a send settled as skipped by hand …)."""
    text = (reason or "").lower()
    for prefix, kind in SKIP_PREFIXES:
        if text.startswith(prefix):
            return kind
    return "other"


def send_counts(outcome: str, kind: str | None, engagement: int) -> dict[str, int]:
    """The counters one send adds: its outcome, and for a sent mail its engagement."""
    if not outcome:
        return {}
    if outcome == SendState.SKIPPED:
        return {f"skipped_{kind or 'other'}": 1}
    if outcome != SendState.SENT:
        return {outcome: 1}
    counts = {"sent": 1}
    for bit, name in ENGAGEMENT_COUNTERS:
        if engagement & bit:
            counts[name] = 1
    return counts


def enrollment_counts(counted: int) -> dict[str, int]:
    counts = {}
    if counted & ENROLLED:
        counts["enrolled"] = 1
    if counted & CONVERTED:
        counts["converted"] = 1
    return counts


def enrollment_bits(state: str) -> int:
    """What an enrollment in ``state`` should count for (see ``UNCOUNTED_ENROLLMENT_SQL``)."""
    return ENROLLED | (CONVERTED if state == "converted" else 0)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The reporting day of a moment: its date in the analytics time zone."""
    return moment.astimezone(zone).date()


def language(locale: str | None) -> str:
    """The language part of a customer's locale (``en-US`` → ``en``): funnels group by it."""
    text = (locale or "").strip().lower()
    return text.split("-")[0].split("_")[0] or "?"
