"""``PATCH /v1/customers/{external_id}``: attributes, plan, contract value, tier, CSM, and
whether the subscription runs.

A tier change is recorded as a ``tier_changed`` event (``{from, to}``), so journeys can be
entered on it (``trigger: {event: tier_changed, properties: {to: high}}``); a move into
``high`` also opens a CSM task. A move down tells the CSM (a ``tier_moved_down`` task) and
tidies what no longer applies: the open ``new_high_touch`` task is closed (its held mails
released or cancelled), the CSM's other open tasks go to the team queue. ``"cancelled": true``
is recorded as a ``subscription_cancelled`` event (``false``: ``subscription_reactivated``), so
it ends journeys that exit on it and automation steps aside, exactly as if the product had
sent the event. Mails render with the tier at send time, so the next mail of a running journey
already reads as the new tier.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.customers.changes import CustomerPatch, CustomerView, changed_values
from orchestrator.customers.relationship import CANCELLED_EVENT, REACTIVATED_EVENT
from orchestrator.customers.tiers import is_move_down
from orchestrator.db.locks import lock_customers
from orchestrator.enrollment.customers import customer_row, update_customer_row
from orchestrator.handoff.holds import end_holds
from orchestrator.handoff.tasks import close_task, hand_to_team, open_task, open_tasks_of
from orchestrator.services.events import UsageRules, react
from orchestrator.services.tasks import TaskNotifier
from orchestrator.usage.events import store_new_events
from orchestrator.webhooks.facts import customer_ref
from orchestrator.webhooks.outbox import emit

NEW_HIGH_TOUCH_TASK_DUE = timedelta(days=2)
TIER_MOVED_DOWN_TASK_DUE = timedelta(days=7)


def update_customer(
    engine: Engine,
    external_id: str,
    patch: CustomerPatch,
    *,
    rules: UsageRules,
    clock: Clock,
    notify: TaskNotifier,
) -> CustomerView:
    """Change the customer in one transaction (CustomerNotFound if there is none); then
    ``notify`` the tasks a tier move opened or handed on."""
    with Session(engine) as session, session.begin():
        now = clock.now()
        connection = session.connection()
        row = customer_row(connection, external_id)
        lock_customers(connection, [row.id])
        row = customer_row(connection, external_id)  # re-read under the lock
        values = changed_values(row, patch, rules.tiers)
        update_customer_row(connection, row.id, {**values, "updated_at": now})
        tasks: list[int] = []
        if values["tier"] != row.tier:
            tasks = _tier_moved(session, row, values["tier"], rules, now)
        if patch.cancelled is not None and patch.cancelled != (row.cancelled_at is not None):
            tasks += _subscription(session, row.id, patch.cancelled, rules, now)
        view = CustomerView.model_validate(
            customer_row(connection, external_id), from_attributes=True
        )
        view.model_dump_json()  # before the commit: a customer we cannot answer is not stored
    if tasks:
        notify(tasks)
    return view


def _tier_moved(
    session: Session, row: Any, new: str, rules: UsageRules, now: datetime
) -> list[int]:
    """Record ``tier_changed`` (journeys react to it); a move into high opens a CSM task, a
    move down tells the CSM and tidies the tasks that no longer apply."""
    old = row.tier
    event = _event(row.id, "tier_changed", f"{old}->{new}", {"from": old, "to": new}, now)
    tasks = react(session, store_new_events(session, [event]), rules, now)
    connection = session.connection()
    customer_id: int = row.id
    emit(
        session,
        "tier.changed",
        lambda: [{"customer_id": customer_ref(session, customer_id), "from": old, "to": new}],
        now,
    )
    if new == "high":
        reason = f"moved from {old} touch to high touch: introduce yourself as their CSM"
        task = open_task(connection, row.id, "new_high_touch", reason, NEW_HIGH_TOUCH_TASK_DUE, now)
        if task is not None:
            tasks.append(task)
    elif is_move_down(old, new):
        tasks += _moved_down(session, row, old, new, rules, now)
    return tasks


def _moved_down(
    session: Session, row: Any, old: str, new: str, rules: UsageRules, now: datetime
) -> list[int]:
    """Out of high touch the customer is no longer one CSM's: the introduction task is closed,
    the CSM's other open tasks go to the team queue, and the CSM hears of it."""
    connection = session.connection()
    closed: list[int] = []
    handed: list[int] = []
    if old == "high":
        for task_id, kind, assignee in open_tasks_of(connection, row.id):
            if kind == "new_high_touch":
                close_task(connection, task_id, now, f"the customer moved to {new} touch")
                end_holds(connection, task_id, rules.journeys, now)
                closed.append(task_id)
            elif assignee is not None:
                hand_to_team(connection, task_id)
                handed.append(task_id)
    if not row.csm_email:
        return handed
    reason = f"moved from {old} touch to {new} touch: no longer a {old}-touch account"
    if closed:
        reason += f"; closed {', '.join(f'#{t}' for t in closed)} (no longer applies)"
    if handed:
        reason += f"; handed {', '.join(f'#{t}' for t in handed)} to the team queue"
    task = open_task(
        connection,
        row.id,
        "tier_moved_down",
        reason,
        TIER_MOVED_DOWN_TASK_DUE,
        now,
        assignee=row.csm_email,
    )
    return [*handed, *([task] if task is not None else [])]


def _subscription(
    session: Session, customer_id: int, cancelled: bool, rules: UsageRules, now: datetime
) -> list[int]:
    name = CANCELLED_EVENT if cancelled else REACTIVATED_EVENT
    event = _event(customer_id, name, "patch", {"source": "patch"}, now)
    return react(session, store_new_events(session, [event]), rules, now)


def _event(
    customer_id: int, name: str, what: str, properties: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An event Stepmail records itself, keyed by what and when (a replay changes nothing)."""
    return {
        "customer_id": customer_id,
        "name": name,
        "event_key": f"{name}:{now.isoformat()}:{what}",
        "occurred_at": now,
        "received_at": now,
        "properties": properties,
    }
