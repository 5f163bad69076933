"""Tell the CSM about a task: a plain mail to the customer's CSM (else the CS team address)
through the configured transport, and a Slack-compatible incoming-webhook post if set.

Internal mail is sent directly, not through the journey pipeline: it goes to our own staff,
needs no unsubscribe or tier rendering, and must not count against the customer's caps.
A task whose mail could not go stays ``notified_at IS NULL`` and is retried by the next
``stepmail health daily`` (or ``stepmail tasks notify``). Slack is best effort.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

import httpx
from sqlalchemy import select, update

from orchestrator.db.tables import csm_tasks, customers
from orchestrator.errors import DeliveryError
from orchestrator.handoff.tasks import TaskView, get_task
from orchestrator.runtime import Runtime
from orchestrator.transports.mail import Mailbox, OutgoingMail

log = logging.getLogger(__name__)
SLACK_TIMEOUT = 5.0


def notify_tasks(runtime: Runtime, task_ids: Sequence[int] | None = None) -> int:
    """Notify the given tasks (default: every open task not yet notified); returns how many."""
    query = select(csm_tasks.c.id).where(
        csm_tasks.c.status == "open", csm_tasks.c.notified_at.is_(None)
    )
    if task_ids is not None:
        if not task_ids:
            return 0
        query = query.where(csm_tasks.c.id.in_(task_ids))
    with runtime.engine.connect() as connection:
        pending = list(connection.execute(query.order_by(csm_tasks.c.id)).scalars())
    return sum(notify_task(runtime, task_id) for task_id in pending)


def notify_task(runtime: Runtime, task_id: int) -> bool:
    with runtime.engine.connect() as connection:
        task = get_task(connection, task_id)
        csm_email = connection.execute(
            select(customers.c.csm_email).where(customers.c.external_id == task.external_id)
        ).scalar()
    recipient = csm_email or runtime.settings.csm_team_email
    try:
        runtime.transport.send(task_mail(runtime, task, recipient))
    except DeliveryError as exc:
        log.warning("task %d: notification mail failed (%s); retried later", task_id, exc)
        return False
    _post_to_slack(runtime, task)
    with runtime.engine.begin() as connection:
        connection.execute(
            update(csm_tasks)
            .where(csm_tasks.c.id == task_id)
            .values(notified_at=runtime.clock.now())
        )
    return True


def task_text(task: TaskView) -> str:
    return (
        f"New CSM task #{task.id} ({task.kind}) for {task.company or task.customer_name} "
        f"[{task.external_id}, {task.tier} touch]\n"
        f"Why: {task.reason}\n"
        f"Due: {task.due_at:%Y-%m-%d %H:%M} UTC\n"
        f"Close it with: stepmail tasks close {task.id}"
    )


def task_mail(runtime: Runtime, task: TaskView, recipient: str) -> OutgoingMail:
    settings = runtime.settings
    text = task_text(task)
    return OutgoingMail(
        idempotency_key=f"stepmail-task-{task.id}",
        sender=Mailbox(settings.sender_email, settings.sender_name),
        to=Mailbox(recipient),
        subject=f"[Stepmail] Task #{task.id}: {task.kind} - {task.company or task.external_id}",
        html=f"<pre>{html.escape(text)}</pre>",
        text=text,
        metadata={"stepmail_task_id": str(task.id)},
        categories=("csm-task",),
        message_id_domain=settings.sender_email.rpartition("@")[2] or "stepmail.local",
        date=runtime.clock.now(),
    )


def _post_to_slack(runtime: Runtime, task: TaskView) -> None:
    url = runtime.settings.slack_webhook_url
    if url is None:
        return
    try:
        response = httpx.post(
            url.get_secret_value(), json={"text": task_text(task)}, timeout=SLACK_TIMEOUT
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:  # the URL is a secret: log the type, not the request
        log.warning("task %d: Slack notification failed (%s)", task.id, type(exc).__name__)
