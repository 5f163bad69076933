"""The CSM inbox: open tasks, mine or the team's, by kind and due date; assign, note, close.

Every change is one transaction with its audit row. "Mine" is the tasks assigned to the
signed-in user's address (a task is assigned to the customer's CSM when it opens). Open tasks
are read through the ``(status, due_at)`` index, soonest first; closed ones through
``(status, closed_at, id)``, latest first; both in keyset pages after a task's id, so a page
costs the same however many tasks were ever closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, text, true, update

from orchestrator.audit.log import Actor, record
from orchestrator.clock import Clock
from orchestrator.db.tables import csm_tasks, customers, task_notes
from orchestrator.errors import InvalidField, TaskNotFound
from orchestrator.guards.mail_headers import check_plain_address
from orchestrator.handoff.holds import end_holds
from orchestrator.handoff.tasks import close_task
from orchestrator.journeys.model import Journey

Scope = Literal["mine", "team"]
TaskState = Literal["open", "closed"]
MAX_NOTE = 2000
_T = csm_tasks


@dataclass(frozen=True)
class InboxTask:
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
    notes: int
    overdue: bool


@dataclass(frozen=True)
class Note:
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Inbox:
    tasks: list[InboxTask]
    kinds: list[str]  # every kind among the listed state's tasks, for the filter
    next_after: int | None = None  # the last task's id, when there is a next page


def _query() -> Any:
    notes = (
        select(func.count()).where(task_notes.c.task_id == _T.c.id).scalar_subquery().label("notes")
    )
    return select(
        _T,
        customers.c.external_id,
        customers.c.name.label("customer_name"),
        customers.c.company,
        customers.c.tier,
        notes,
    ).join(customers, customers.c.id == _T.c.customer_id)


def _task(row: Any, now: datetime) -> InboxTask:
    return InboxTask(
        row.id,
        row.external_id,
        row.customer_name,
        row.company,
        row.tier,
        row.kind,
        row.reason,
        row.status,
        row.assignee,
        row.created_at,
        row.due_at,
        row.closed_at,
        row.notes,
        overdue=row.status == "open" and row.due_at < now,
    )


def task_detail(engine: Engine, task_id: int, *, now: datetime) -> tuple[InboxTask, list[Note]]:
    with engine.connect() as connection:
        row = connection.execute(_query().where(_T.c.id == task_id)).first()
        if row is None:
            raise TaskNotFound(f"no task {task_id}")
        notes = connection.execute(
            select(task_notes)
            .where(task_notes.c.task_id == task_id)
            .order_by(task_notes.c.created_at, task_notes.c.id)
        )
        return _task(row, now), [Note(n.author, n.body, n.created_at) for n in notes]


def inbox(
    engine: Engine,
    *,
    me: str,
    scope: Scope = "mine",
    status: TaskState = "open",
    kind: str | None = None,
    now: datetime,
    limit: int = 200,
    after: int | None = None,
) -> Inbox:
    """A page of tasks: open ones soonest due first, closed ones latest closed first, after the
    task ``after`` (the last of the page before; an id that names no task starts over)."""
    query = _query().where(_T.c.status == status)
    if status == "open":
        query = query.order_by(_T.c.due_at, _T.c.id)
    else:
        query = query.order_by(_T.c.closed_at.desc(), _T.c.id.desc())
    if scope == "mine":
        query = query.where(_T.c.assignee == me)
    if kind:
        query = query.where(_T.c.kind == kind)
    with engine.connect() as connection:
        if after is not None:
            query = query.where(_after(connection, status, after))
        rows = connection.execute(query.limit(limit + 1)).all()
        more = len(rows) > limit
        tasks = [_task(r, now) for r in rows[:limit]]
        return Inbox(
            tasks,
            _kinds(connection, status),
            next_after=tasks[-1].id if more else None,
        )


def count_open(engine: Engine, *, me: str) -> int:
    """The open tasks assigned to ``me``, all of them (the home page's tile)."""
    query = select(func.count()).where(_T.c.status == "open", _T.c.assignee == me)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _after(connection: Connection, status: TaskState, task_id: int) -> Any:
    """The tasks past ``task_id`` in the list's order (every task, if it names none)."""
    key = _T.c.due_at if status == "open" else _T.c.closed_at
    at = connection.execute(select(key).where(_T.c.id == task_id)).scalar()
    if at is None:
        return true()
    if status == "open":
        return or_(key > at, and_(key == at, _T.c.id > task_id))
    return or_(key < at, and_(key == at, _T.c.id < task_id))


def _kinds(connection: Connection, status: TaskState) -> list[str]:
    """Every kind among the tasks of ``status``, for the filter: a skip through the
    ``(status, kind)`` index, one step a kind, however many tasks were ever closed."""
    return list(connection.execute(_KINDS, {"status": status}).scalars())


_KINDS = text(
    """WITH RECURSIVE kinds(kind) AS (
    SELECT (SELECT t.kind FROM csm_task AS t WHERE t.status = :status ORDER BY t.kind LIMIT 1)
    UNION ALL
    SELECT (SELECT t.kind FROM csm_task AS t WHERE t.status = :status AND t.kind > k.kind
            ORDER BY t.kind LIMIT 1)
        FROM kinds AS k WHERE k.kind IS NOT NULL
)
SELECT kind FROM kinds WHERE kind IS NOT NULL"""
)


def assign_task(engine: Engine, task_id: int, assignee: str, *, actor: Actor, clock: Clock) -> None:
    address = assignee.strip().lower()
    try:
        check_plain_address(address)
    except ValueError as exc:
        raise InvalidField("assignee", str(exc)) from None
    now = clock.now()
    with engine.begin() as connection:
        before = _exists(connection, task_id)
        connection.execute(update(_T).where(_T.c.id == task_id).values(assignee=address))
        record(
            connection, actor, "task.assign", ("task", task_id), now, assignee=address, was=before
        )


def add_note(engine: Engine, task_id: int, body: str, *, actor: Actor, clock: Clock) -> None:
    text = body.strip()
    if not text:
        raise InvalidField("note", "write something")
    if len(text) > MAX_NOTE or "\x00" in text:
        raise InvalidField("note", f"at most {MAX_NOTE} characters, no NUL")
    now = clock.now()
    with engine.begin() as connection:
        _exists(connection, task_id)
        connection.execute(
            insert(task_notes).values(task_id=task_id, author=actor.name, body=text, created_at=now)
        )
        record(connection, actor, "task.note", ("task", task_id), now, length=len(text))


def close_inbox_task(
    engine: Engine,
    task_id: int,
    *,
    actor: Actor,
    clock: Clock,
    journeys: Mapping[str, Journey] | None = None,
) -> None:
    """Close the task; the mails it held are released or cancelled as their journey says."""
    now = clock.now()
    with engine.begin() as connection:
        task, closed = close_task(connection, task_id, now)  # TaskNotFound for an unknown id
        if closed:
            end_holds(connection, task_id, journeys or {}, now)
        record(
            connection,
            actor,
            "task.close",
            ("task", task_id),
            now,
            kind=task.kind,
            customer=task.external_id,
        )


def _exists(connection: Connection, task_id: int) -> str | None:
    """The task's assignee; TaskNotFound if there is no such task."""
    row = connection.execute(select(_T.c.assignee).where(_T.c.id == task_id)).first()
    if row is None:
        raise TaskNotFound(f"no task {task_id}")
    assignee: str | None = row.assignee
    return assignee
