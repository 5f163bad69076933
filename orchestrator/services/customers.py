"""``PATCH /v1/customers/{external_id}``: attributes, plan, contract value, tier, CSM.

A tier change is recorded as a ``tier_changed`` event (``{from, to}``), so journeys can be
entered on it (``trigger: {event: tier_changed, properties: {to: high}}``); a move into
``high`` also opens a CSM task. Mails render with the tier at send time, so the next mail of a
running journey already reads as the new tier.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.customers.changes import CustomerPatch, CustomerView, changed_values
from orchestrator.db.locks import lock_customers
from orchestrator.enrollment.customers import customer_row, update_customer_row
from orchestrator.handoff.tasks import open_task
from orchestrator.services.events import UsageRules, react
from orchestrator.services.tasks import TaskNotifier
from orchestrator.usage.events import store_new_events
from orchestrator.webhooks.facts import customer_ref
from orchestrator.webhooks.outbox import emit

NEW_HIGH_TOUCH_TASK_DUE = timedelta(days=2)


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
    ``notify`` the tasks a tier move opened."""
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
            tasks = _tier_moved(session, row.id, row.tier, values["tier"], rules, now)
        view = CustomerView.model_validate(
            customer_row(connection, external_id), from_attributes=True
        )
        view.model_dump_json()  # before the commit: a customer we cannot answer is not stored
    if tasks:
        notify(tasks)
    return view


def _tier_moved(
    session: Session, customer_id: int, old: str, new: str, rules: UsageRules, now: datetime
) -> list[int]:
    """Record ``tier_changed`` (journeys react to it); a move into high opens a CSM task."""
    event = {
        "customer_id": customer_id,
        "name": "tier_changed",
        "event_key": f"tier_changed:{now.isoformat()}:{old}->{new}",
        "occurred_at": now,
        "received_at": now,
        "properties": {"from": old, "to": new},
    }
    tasks = react(session, store_new_events(session, [event]), rules, now)
    emit(
        session,
        "tier.changed",
        lambda: [{"customer_id": customer_ref(session, customer_id), "from": old, "to": new}],
        now,
    )
    if new == "high":
        reason = f"moved from {old} touch to high touch: introduce yourself as their CSM"
        task = open_task(
            session.connection(),
            customer_id,
            "new_high_touch",
            reason,
            NEW_HIGH_TOUCH_TASK_DUE,
            now,
        )
        if task is not None:
            tasks.append(task)
    return tasks
