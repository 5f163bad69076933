"""CSM tasks: listed, closed (which ends the holds they put on a journey's mails), notified (a
mail to the CSM or the team, a Slack post), and escalated to the team once when overdue.

Internal mail is sent directly, not through the journey pipeline: it goes to our own staff,
needs no unsubscribe or tier rendering, and must not count against the customer's caps. A
task whose mail could not go stays ``notified_at IS NULL`` and is retried by the next
``stepmail health daily`` (or ``stepmail tasks notify``); an escalation that could not go is
tried again at the next run of the job. Slack is best effort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.clock import Clock
from orchestrator.errors import DeliveryError
from orchestrator.guards.cursors import Page, decode_cursor, encode_cursor, page_of
from orchestrator.handoff import tasks
from orchestrator.handoff.holds import end_holds
from orchestrator.handoff.notify import (
    HandoffConfig,
    escalation_mail,
    escalation_text,
    post_to_slack,
    task_mail,
)
from orchestrator.handoff.tasks import TaskStatus, TaskView
from orchestrator.journeys.model import Journey
from orchestrator.scheduling.periodic import claim_window, finish_window
from orchestrator.transports.base import Transport

__all__ = [
    "TaskNotifier",
    "TaskStatus",
    "close_task",
    "escalate_overdue_tasks",
    "list_tasks",
    "list_tasks_page",
    "notify_tasks",
]
log = logging.getLogger(__name__)

# Called with the ids of tasks a service opened (None: every task not yet notified), after its
# transaction committed: the API schedules the notification after its answer, the CLI and the
# simulator notify at once (Runtime.notify_now).
TaskNotifier = Callable[[Sequence[int] | None], object]

TASK_ESCALATION = "task-escalation"
ESCALATE_EVERY = timedelta(minutes=5)
CLAIM_FOR = timedelta(minutes=10)


def list_tasks(
    engine: Engine, *, status: TaskStatus | None = "open", limit: int = 100
) -> list[TaskView]:
    """Tasks by due time, soonest first (``status`` None: all)."""
    with engine.connect() as connection:
        return tasks.list_tasks(connection, status, limit)


def list_tasks_page(
    engine: Engine,
    *,
    status: TaskStatus | None = "open",
    cursor: str | None = None,
    limit: int = 100,
) -> Page[TaskView]:
    """A page of tasks, soonest due first; the cursor of the next one (InvalidRequest for a
    cursor that is not one of this list's, the same status included)."""
    name = f"tasks:{status or 'all'}"
    after = None
    if cursor:
        due, task_id = decode_cursor(name, cursor, (datetime, int))
        assert isinstance(due, datetime) and isinstance(task_id, int)
        after = (due, task_id)
    with engine.connect() as connection:
        found = tasks.list_tasks(connection, status, limit + 1, after)
    shown, last = page_of(found, limit)
    return Page(shown, None if last is None else encode_cursor(name, [last.due_at, last.id]))


def close_task(
    engine: Engine,
    task_id: int,
    *,
    journeys: Mapping[str, Journey],
    clock: Clock,
    reason: str | None = None,
) -> TaskView:
    """Close a task and, in the same transaction, release or cancel the mails it held (as
    each journey's ``on_task_closed`` says). Closing a closed task returns it as it is;
    TaskNotFound if there is none."""
    with engine.begin() as connection:
        now = clock.now()
        view, closed = tasks.close_task(connection, task_id, now, reason)
        if closed:
            end_holds(connection, task_id, journeys, now)
    return view


def notify_tasks(
    engine: Engine,
    transport: Transport,
    *,
    config: HandoffConfig,
    clock: Clock,
    task_ids: Sequence[int] | None = None,
) -> int:
    """Notify the given tasks (default: every open task not yet notified); returns how many."""
    if task_ids is not None and not task_ids:
        return 0
    with engine.connect() as connection:
        pending = tasks.pending_task_ids(connection, task_ids)
    return sum(_notify(engine, transport, config, clock, task_id) for task_id in pending)


def _notify(
    engine: Engine, transport: Transport, config: HandoffConfig, clock: Clock, task_id: int
) -> bool:
    with engine.connect() as connection:
        task = tasks.get_task(connection, task_id)
    recipient = task.assignee or config.team_email
    try:
        transport.send(task_mail(task, recipient, config, clock.now()))
    except DeliveryError as exc:
        log.warning("task %d: notification mail failed (%s); retried later", task_id, exc)
        return False
    post_to_slack(config.slack_webhook_url, task)
    with engine.begin() as connection:
        tasks.mark_notified(connection, task_id, clock.now())
    return True


def escalate_overdue_tasks(
    engine: Engine,
    transport: Transport,
    *,
    config: HandoffConfig,
    now: datetime,
    every: timedelta = ESCALATE_EVERY,
) -> list[int] | None:
    """Tell the team, once per task, about every open task past its due time; the ids
    escalated. A periodic job (``scheduling/periodic``): None when not due, or another
    scheduler is running it."""
    window = claim_window(engine, TASK_ESCALATION, every, now, CLAIM_FOR)
    if window is None:
        return None
    with engine.connect() as connection:
        overdue = tasks.overdue_task_ids(connection, now)
    done = [task_id for task_id in overdue if _escalate(engine, transport, config, task_id, now)]
    finish_window(engine, TASK_ESCALATION, window)
    return done


def _escalate(
    engine: Engine, transport: Transport, config: HandoffConfig, task_id: int, now: datetime
) -> bool:
    """Send, then record: a failed mail is tried again at the next run (the claimed window
    keeps a second scheduler out meanwhile)."""
    with engine.connect() as connection:
        task = tasks.get_task(connection, task_id)
    try:
        transport.send(escalation_mail(task, config, now))
    except DeliveryError as exc:
        log.warning("task %d: overdue escalation failed (%s); tried again later", task_id, exc)
        return False
    post_to_slack(config.slack_webhook_url, task, escalation_text(task, now))
    with engine.begin() as connection:
        return tasks.mark_escalated(connection, task_id, now)
