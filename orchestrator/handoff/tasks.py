"""CSM tasks: stored, listed, closed, handed on. One open task per customer and kind, so a
signal that repeats (a second detractor score, a wobbling band) does not flood the CSM's list.

A high-touch customer's task is their CSM's; every other tier's goes to the team queue
(no assignee: the CS team address hears of it). A task past its due time is escalated to the
team once (``escalated_at``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Select, insert, select, tuple_, update

from orchestrator.customers.tiers import Tier
from orchestrator.db.tables import csm_tasks, customers
from orchestrator.errors import TaskNotFound
from orchestrator.observability.metrics import TASKS_OPENED
from orchestrator.webhooks.outbox import emit

_TASKS = csm_tasks
TaskStatus = Literal["open", "closed"]
CSM_TIERS: tuple[Tier, ...] = ("high",)  # whose tasks go to the customer's own CSM
TEAM_QUEUE = None  # the assignee of a task for the team: no one person
_BY_TIER = "by-tier"


class TaskView(BaseModel):
    id: int
    external_id: str
    customer_name: str
    company: str
    tier: str
    kind: str
    reason: str
    status: str
    assignee: str | None
    created_at: datetime
    due_at: datetime
    closed_at: datetime | None
    notified_at: datetime | None
    closed_reason: str | None = None
    escalated_at: datetime | None = None


def open_task(
    connection: Connection,
    customer_id: int,
    kind: str,
    reason: str,
    due_in: timedelta,
    now: datetime,
    *,
    assignee: str | None = _BY_TIER,
) -> int | None:
    """Open a task; None if one of this kind is already open. By default it is the CSM's for a
    high-touch customer and the team's for the others; ``assignee`` names someone else."""
    already = connection.execute(
        select(_TASKS.c.id).where(
            _TASKS.c.customer_id == customer_id, _TASKS.c.kind == kind, _TASKS.c.status == "open"
        )
    ).first()
    if already is not None:
        return None
    if assignee == _BY_TIER:
        assignee = owner(connection, customer_id)
    task_id = int(
        connection.execute(
            insert(_TASKS)
            .values(
                customer_id=customer_id,
                kind=kind,
                reason=reason[:1000],
                status="open",
                assignee=assignee,
                created_at=now,
                due_at=now + due_in,
            )
            .returning(_TASKS.c.id)
        ).scalar_one()
    )
    TASKS_OPENED.labels(kind).inc()
    emit(connection, "task.opened", lambda: [_task_data(connection, task_id)], now)
    return task_id


def list_tasks(
    connection: Connection,
    status: TaskStatus | None = "open",
    limit: int = 100,
    after: tuple[datetime, int] | None = None,
) -> list[TaskView]:
    """Tasks by due time, soonest first, after the key ``(due_at, id)`` of the last task of
    the previous page: one status through ``(status, due_at)``, all through ``(due_at, id)``,
    each read from the page's start (a row comparison the index bounds), never sorted whole."""
    query = _with_customer().order_by(_TASKS.c.due_at, _TASKS.c.id).limit(limit)
    if status is not None:
        query = query.where(_TASKS.c.status == status)
    if after is not None:
        query = query.where(tuple_(_TASKS.c.due_at, _TASKS.c.id) > after)  # typed as the columns
    return [TaskView.model_validate(row, from_attributes=True) for row in connection.execute(query)]


def get_task(connection: Connection, task_id: int) -> TaskView:
    row = connection.execute(_with_customer().where(_TASKS.c.id == task_id)).first()
    if row is None:
        raise TaskNotFound(f"no task {task_id}")
    return TaskView.model_validate(row, from_attributes=True)


def owner(connection: Connection, customer_id: int) -> str | None:
    """Who a new task of this customer goes to: their CSM in high touch, else the team."""
    row = connection.execute(
        select(customers.c.tier, customers.c.csm_email).where(customers.c.id == customer_id)
    ).one()
    return row.csm_email if row.tier in CSM_TIERS else TEAM_QUEUE


def close_task(
    connection: Connection, task_id: int, now: datetime, reason: str | None = None
) -> tuple[TaskView, bool]:
    """Close a task; the view, and whether this call closed it (closing a closed one is a
    no-op that returns it). The caller ends the holds a closing releases."""
    get_task(connection, task_id)
    closed = connection.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id, _TASKS.c.status == "open")
        .values(status="closed", closed_at=now, closed_reason=reason and reason[:500])
    ).rowcount
    if closed:
        emit(connection, "task.closed", lambda: [_task_data(connection, task_id)], now)
    return get_task(connection, task_id), bool(closed)


def open_tasks_of(connection: Connection, customer_id: int) -> list[tuple[int, str, str | None]]:
    """(id, kind, assignee) of the customer's open tasks, oldest first."""
    query = (
        select(_TASKS.c.id, _TASKS.c.kind, _TASKS.c.assignee)
        .where(_TASKS.c.customer_id == customer_id, _TASKS.c.status == "open")
        .order_by(_TASKS.c.id)
    )
    return [(row.id, row.kind, row.assignee) for row in connection.execute(query)]


def hand_to_team(connection: Connection, task_id: int) -> None:
    """Re-target a task to the team queue; the team is notified of it as of a new task."""
    connection.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id, _TASKS.c.status == "open")
        .values(assignee=TEAM_QUEUE, notified_at=None)
    )


def overdue_task_ids(connection: Connection, now: datetime) -> list[int]:
    """Open tasks past their due time whose escalation has not gone out (the ``(status,
    due_at)`` index bounds the read to open tasks already due)."""
    query = (
        select(_TASKS.c.id)
        .where(_TASKS.c.status == "open", _TASKS.c.due_at <= now, _TASKS.c.escalated_at.is_(None))
        .order_by(_TASKS.c.due_at, _TASKS.c.id)
    )
    return list(connection.execute(query).scalars())


def mark_escalated(connection: Connection, task_id: int, now: datetime) -> bool:
    """Record the escalation once; False if it was recorded already."""
    result = connection.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id, _TASKS.c.escalated_at.is_(None))
        .values(escalated_at=now)
    )
    return bool(result.rowcount)


def _task_data(connection: Connection, task_id: int) -> dict[str, Any]:
    """What ``task.opened`` and ``task.closed`` say (the customer by the integrator's id)."""
    row = connection.execute(
        select(
            _TASKS.c.kind,
            _TASKS.c.reason,
            _TASKS.c.status,
            _TASKS.c.due_at,
            customers.c.external_id,
        )
        .join(customers, customers.c.id == _TASKS.c.customer_id)
        .where(_TASKS.c.id == task_id)
    ).one()
    return {
        "task_id": task_id,
        "kind": row.kind,
        "customer_id": row.external_id,
        "reason": row.reason,
        "status": row.status,
        "due_at": row.due_at.isoformat(),
    }


def _with_customer() -> Select[Any]:
    return select(
        _TASKS,
        customers.c.external_id,
        customers.c.name.label("customer_name"),
        customers.c.company,
        customers.c.tier,
    ).join(customers, customers.c.id == _TASKS.c.customer_id)


def pending_task_ids(connection: Connection, task_ids: Sequence[int] | None = None) -> list[int]:
    """Open tasks whose notification has not gone out (of ``task_ids``, when given)."""
    query = select(_TASKS.c.id).where(_TASKS.c.status == "open", _TASKS.c.notified_at.is_(None))
    if task_ids is not None:
        query = query.where(_TASKS.c.id.in_(list(task_ids)))
    return list(connection.execute(query.order_by(_TASKS.c.id)).scalars())


def mark_notified(connection: Connection, task_id: int, now: datetime) -> None:
    connection.execute(update(_TASKS).where(_TASKS.c.id == task_id).values(notified_at=now))
