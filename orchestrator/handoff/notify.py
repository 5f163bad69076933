"""How a CSM hears about a task: a plain mail to the customer's CSM (else the CS team address)
through the configured transport, and a Slack-compatible incoming-webhook post if set. The
order (read, send, post, mark notified) is :func:`orchestrator.services.tasks.notify_tasks`.

Internal mail is sent directly, not through the journey pipeline: it goes to our own staff,
needs no unsubscribe or tier rendering, and must not count against the customer's caps.
A task whose mail could not go stays ``notified_at IS NULL`` and is retried by the next
``stepmail health daily`` (or ``stepmail tasks notify``). Slack is best effort.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime

import httpx

from orchestrator.handoff.tasks import TaskView
from orchestrator.transports.mail import Mailbox, OutgoingMail

log = logging.getLogger(__name__)
SLACK_TIMEOUT = 5.0


@dataclass(frozen=True)
class HandoffConfig:
    """Who task mails come from, where they go without a CSM, and the Slack webhook (a secret:
    never logged)."""

    sender: Mailbox
    team_email: str
    slack_webhook_url: str | None = None


def task_text(task: TaskView) -> str:
    return (
        f"New CSM task #{task.id} ({task.kind}) for {task.company or task.customer_name} "
        f"[{task.external_id}, {task.tier} touch]\n"
        f"Why: {task.reason}\n"
        f"Due: {task.due_at:%Y-%m-%d %H:%M} UTC\n"
        f"Close it with: stepmail tasks close {task.id}"
    )


def task_mail(task: TaskView, recipient: str, config: HandoffConfig, now: datetime) -> OutgoingMail:
    text = task_text(task)
    return OutgoingMail(
        idempotency_key=f"stepmail-task-{task.id}",
        sender=config.sender,
        to=Mailbox(recipient),
        subject=f"[Stepmail] Task #{task.id}: {task.kind} - {task.company or task.external_id}",
        html=f"<pre>{html.escape(text)}</pre>",
        text=text,
        metadata={"stepmail_task_id": str(task.id)},
        categories=("csm-task",),
        message_id_domain=config.sender.email.rpartition("@")[2] or "stepmail.local",
        date=now,
    )


def escalation_text(task: TaskView, now: datetime) -> str:
    late = now - task.due_at
    hours = int(late.total_seconds() // 3600)
    return (
        f"Overdue CSM task #{task.id} ({task.kind}) for {task.company or task.customer_name} "
        f"[{task.external_id}, {task.tier} touch], {hours} h past due\n"
        f"Assigned to: {task.assignee or 'the CS team queue'}\n"
        f"Why: {task.reason}\n"
        f"Due: {task.due_at:%Y-%m-%d %H:%M} UTC\n"
        f"Close it with: stepmail tasks close {task.id}"
    )


def escalation_mail(task: TaskView, config: HandoffConfig, now: datetime) -> OutgoingMail:
    """The one mail that tells the team a task is overdue (its key makes a resend a no-op on
    an idempotent transport)."""
    text = escalation_text(task, now)
    return OutgoingMail(
        idempotency_key=f"stepmail-task-{task.id}-overdue",
        sender=config.sender,
        to=Mailbox(config.team_email),
        subject=f"[Stepmail] Overdue task #{task.id}: {task.kind} - "
        f"{task.company or task.external_id}",
        html=f"<pre>{html.escape(text)}</pre>",
        text=text,
        metadata={"stepmail_task_id": str(task.id)},
        categories=("csm-task", "csm-task-overdue"),
        message_id_domain=config.sender.email.rpartition("@")[2] or "stepmail.local",
        date=now,
    )


def post_to_slack(url: str | None, task: TaskView, text: str | None = None) -> None:
    """Best effort: a failure is logged (its type only: the URL is a secret) and forgotten."""
    if url is None:
        return
    try:
        response = httpx.post(url, json={"text": text or task_text(task)}, timeout=SLACK_TIMEOUT)
        response.raise_for_status()
    except httpx.HTTPError as exc:  # the URL is a secret: log the type, not the request
        log.warning("task %d: Slack notification failed (%s)", task.id, type(exc).__name__)
