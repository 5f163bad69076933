"""CSM tasks: listed, closed, and notified (a mail to the CSM or the team, a Slack post).

Internal mail is sent directly, not through the journey pipeline: it goes to our own staff,
needs no unsubscribe or tier rendering, and must not count against the customer's caps. A
task whose mail could not go stays ``notified_at IS NULL`` and is retried by the next
``stepmail health daily`` (or ``stepmail tasks notify``). Slack is best effort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from orchestrator.clock import Clock
from orchestrator.errors import DeliveryError
from orchestrator.guards.cursors import Page, decode_cursor, encode_cursor, page_of
from orchestrator.handoff import tasks
from orchestrator.handoff.notify import HandoffConfig, post_to_slack, task_mail
from orchestrator.handoff.tasks import TaskStatus, TaskView
from orchestrator.transports.base import Transport

__all__ = [
    "TaskNotifier",
    "TaskStatus",
    "close_task",
    "list_tasks",
    "list_tasks_page",
    "notify_tasks",
]
log = logging.getLogger(__name__)

# Called with the ids of tasks a service opened (None: every task not yet notified), after its
# transaction committed: the API schedules the notification after its answer, the CLI and the
# simulator notify at once (Runtime.notify_now).
TaskNotifier = Callable[[Sequence[int] | None], object]


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


def close_task(engine: Engine, task_id: int, *, clock: Clock) -> TaskView:
    """Close a task (closing a closed one returns it as it is); TaskNotFound if none."""
    with engine.begin() as connection:
        return tasks.close_task(connection, task_id, clock.now())


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
        recipient = tasks.csm_address(connection, task.external_id) or config.team_email
    try:
        transport.send(task_mail(task, recipient, config, clock.now()))
    except DeliveryError as exc:
        log.warning("task %d: notification mail failed (%s); retried later", task_id, exc)
        return False
    post_to_slack(config.slack_webhook_url, task)
    with engine.begin() as connection:
        tasks.mark_notified(connection, task_id, clock.now())
    return True
