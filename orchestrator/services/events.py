"""Usage events in (``POST /v1/events``, ``stepmail track``, the simulator): stored once and
reacted to in one transaction, then the CSM is told about the tasks they opened.

On PostgreSQL the batch's customers are locked (in id order, so two batches cannot deadlock):
their events are processed one transaction at a time, which keeps re-entry rules and health
band changes race-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.customers.tiers import TierThresholds
from orchestrator.health.model import HealthDefinition
from orchestrator.health.rescore import CustomerHealth, rescore_customers, task_signals
from orchestrator.journeys.model import Journey
from orchestrator.services.tasks import TaskNotifier
from orchestrator.usage.events import (
    EventCustomer,
    EventsAccepted,
    EventSubmission,
    NewEvent,
    event_rows,
    lock_event_customers,
    store_new_events,
)
from orchestrator.usage.reactions import react_to_events


@dataclass(frozen=True)
class UsageRules:
    """What reacts to events: the journeys, the health definition (None: no scoring), the
    tier thresholds and how long a health band's actions rest after firing."""

    journeys: Mapping[str, Journey]
    health: HealthDefinition | None
    tiers: TierThresholds
    action_cooldown: timedelta


def track_events(
    engine: Engine,
    submission: EventSubmission,
    *,
    rules: UsageRules,
    clock: Clock,
    notify: TaskNotifier,
) -> EventsAccepted:
    """Store the events that are new and react to them, all or nothing (UnknownCustomers
    before anything is stored); then ``notify`` the tasks they opened."""
    events = submission.events
    with Session(engine) as session, session.begin():
        now = clock.now()
        found = lock_event_customers(session, events, batched=submission.batched)
        ids = {external_id: customer.id for external_id, customer in found.items()}
        new = store_new_events(session, event_rows(events, ids, now))
        tasks = react(session, new, rules, now, {c.id: c for c in found.values()})
    if tasks:
        notify(tasks)
    return EventsAccepted(stored=len(new), duplicates=len(events) - len(new), task_ids=tasks)


def react(
    session: Session,
    new: Sequence[NewEvent],
    rules: UsageRules,
    now: datetime,
    customers: Mapping[int, EventCustomer] | None = None,
) -> list[int]:
    """Inside the caller's transaction: journeys first (goals, exits, event steps), then the
    health score and risk signals; returns the CSM tasks opened. ``customers``, when the
    caller read them under their lock, saves reading their tier and score again."""
    react_to_events(session, new, rules.journeys, now)
    if rules.health is None:
        return []
    tiers = None if customers is None else {cid: c.tier for cid, c in customers.items()}
    tasks = task_signals(session, new, rules.health, now, tiers=tiers)
    inputs = rules.health.input_events()
    touched = sorted({e.customer_id for e in new if e.name in inputs})
    known = None if customers is None else [_health_row(customers[cid]) for cid in touched]
    tasks += rescore_customers(
        session, touched, rules.health, rules.journeys, rules.action_cooldown, now, rows=known
    )
    return tasks


def _health_row(customer: EventCustomer) -> CustomerHealth:
    return CustomerHealth(
        customer.id,
        customer.tier,
        customer.signed_up_at,
        customer.health_score,
        customer.health_band,
    )
