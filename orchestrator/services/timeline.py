"""What happened, in order, read back from the store: sends (with how each ended), events,
score changes, tasks and ended enrollments. ``stepmail simulate`` prints it from its throwaway
database, which holds one customer; the rows here are every customer's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from orchestrator.customers.timezones import zone
from orchestrator.db.tables import (
    csm_tasks,
    customer_stage_history,
    customers,
    enrollments,
    health_score_history,
    scheduled_sends,
    send_holds,
    usage_events,
)
from orchestrator.journeys.states import ACTIVE_SEND_STATES

# Several things at one moment read in this order: the event, its score, its stage, its task,
# the end.
_ORDER = {
    "event": 0,
    "answer": 0,
    "score": 1,
    "stage": 2,
    "task": 3,
    "converted": 4,
    "exited": 4,
}


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    kind: str  # mail, skipped, missed, cancelled, failed, held, released, event, answer
    # (an NPS answer), score, stage, task, converted, exited
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
            elif send.state != "held":  # a hold's rows below say when and for which task
                rows.append(TimelineRow(at, send.state, step, send.reason or ""))
        rows += _holds(connection)
        for event in connection.execute(select(usage_events)):
            if event.name == "stage_changed":  # the stage rows below say it with the reason
                continue
            props = json.dumps(event.properties, ensure_ascii=False) if event.properties else ""
            if event.name == "nps_submitted" and isinstance(event.properties.get("score"), int):
                what = f"NPS {event.properties['score']}"
                category = event.properties.get("category")
                rows.append(TimelineRow(event.occurred_at, "answer", what, str(category or "")))
                continue
            rows.append(TimelineRow(event.occurred_at, "event", event.name, props))
        for move in connection.execute(select(customer_stage_history)):
            what = f"{move.previous or '-'} -> {move.stage}"
            rows.append(
                TimelineRow(move.changed_at, "stage", what, f"{move.source}: {move.reason}")
            )
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


def _holds(connection: Connection) -> list[TimelineRow]:
    """A held mail: when it was held (for which task), and when the task's close ended it."""
    rows = []
    query = select(send_holds, scheduled_sends.c.journey_id, scheduled_sends.c.step_id).join(
        scheduled_sends, scheduled_sends.c.id == send_holds.c.scheduled_send_id
    )
    for hold in connection.execute(query):
        step = f"{hold.journey_id}/{hold.step_id}"
        rows.append(TimelineRow(hold.held_at, "held", step, f"CSM task #{hold.task_id} is open"))
        if hold.ended_at is not None:
            kind = "released" if hold.outcome == "released" else "cancelled"
            rows.append(TimelineRow(hold.ended_at, kind, step, f"CSM task #{hold.task_id} closed"))
    return rows
