"""What happened, in order, read back from the store: sends (with how each ended), events,
score changes, tasks and ended enrollments. ``stepmail simulate`` prints it from its throwaway
database, which holds one customer; the rows here are every customer's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select

from orchestrator.customers.timezones import zone
from orchestrator.db.tables import (
    csm_tasks,
    customers,
    enrollments,
    health_score_history,
    scheduled_sends,
    usage_events,
)
from orchestrator.journeys.states import ACTIVE_SEND_STATES

# Several things at one moment read in this order: the event, its score, its task, the end.
_ORDER = {"event": 0, "score": 1, "task": 2, "converted": 3, "exited": 3}


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    kind: str  # mail, skipped, missed, cancelled, failed, event, score, task, converted, exited
    what: str  # journey/step, event name, score (band), task kind or journey
    detail: str  # reason, properties (empty for a mail: see mail_key)
    mail_key: str | None = None  # a sent mail's idempotency key


@dataclass(frozen=True)
class Timeline:
    timezone: str  # the (first) customer's
    rows: list[TimelineRow]
    # Sends not yet made by ``until``: kind ``pending``, ``at`` the time they would go next.
    pending: list[TimelineRow] = field(default_factory=list)


def timeline_rows(engine: Engine, *, until: datetime) -> Timeline:
    """Everything up to ``until``, in order; sends not made yet are listed apart."""
    with engine.connect() as connection:
        timezone = connection.execute(select(customers.c.timezone)).scalars().first() or "UTC"
        rows: list[TimelineRow] = []
        pending: list[TimelineRow] = []
        for send in connection.execute(select(scheduled_sends)):
            if send.state in ACTIVE_SEND_STATES:
                due = send.due_at.astimezone(zone(timezone))
                detail = send.reason or f"due {due:%Y-%m-%d %H:%M %Z}"
                what = f"{send.journey_id}/{send.step_id}"
                pending.append(TimelineRow(send.wake_at or send.due_at, "pending", what, detail))
                continue
            at = send.sent_at or send.updated_at
            step = f"{send.journey_id}/{send.step_id}"
            if send.state == "sent":
                key = f"stepmail-{send.enrollment_id}-{send.step_id}"
                rows.append(TimelineRow(at, "mail", step, "", key))
            else:
                rows.append(TimelineRow(at, send.state, step, send.reason or ""))
        for event in connection.execute(select(usage_events)):
            props = json.dumps(event.properties, ensure_ascii=False) if event.properties else ""
            rows.append(TimelineRow(event.occurred_at, "event", event.name, props))
        for score in connection.execute(select(health_score_history)):
            rows.append(
                TimelineRow(score.computed_at, "score", f"{score.score} ({score.band})", "")
            )
        for task in connection.execute(select(csm_tasks)):
            rows.append(TimelineRow(task.created_at, "task", task.kind, task.reason))
        for ended in connection.execute(
            select(enrollments).where(enrollments.c.ended_at.is_not(None))
        ):
            rows.append(
                TimelineRow(ended.ended_at, ended.state, ended.journey_id, ended.end_reason or "")
            )
    rows = [row for row in rows if row.at <= until]
    rows.sort(key=lambda row: (row.at, _ORDER.get(row.kind, 4)))
    pending.sort(key=lambda row: (row.at, row.what))
    return Timeline(timezone, rows, pending)
