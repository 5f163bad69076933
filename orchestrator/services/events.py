"""Usage events in (``POST /v1/events``, ``stepmail track``, the simulator): stored once and
reacted to in one transaction, then the CSM is told about the tasks they opened.

On PostgreSQL the batch's customers are locked (in id order, so two batches cannot deadlock):
their events are processed one transaction at a time, which keeps re-entry rules and health
band changes race-free.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.customers.tiers import TierThresholds
from orchestrator.enrollment.stages import STAGE_CHANGED
from orchestrator.health.inputs import load_inputs, usage_answers
from orchestrator.health.lifecycle import Lifecycle
from orchestrator.health.model import HealthDefinition
from orchestrator.health.rescore import HealthRow, rescore_customers, task_signals
from orchestrator.health.score import HealthScore
from orchestrator.health.stages import StageFacts, StageRow, advance_stages, stage_questions
from orchestrator.journeys.catalogue import EventCatalogue
from orchestrator.journeys.model import Journey
from orchestrator.services.tasks import TaskNotifier
from orchestrator.usage.events import (
    EventCustomer,
    EventIn,
    EventsAccepted,
    EventSubmission,
    NewEvent,
    event_rows,
    lock_event_customers,
    store_new_events,
)
from orchestrator.usage.reactions import ATTRIBUTION_WINDOW, react_to_events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsageRules:
    """What reacts to events: the journeys, the health definition (None: no scoring), the
    tier thresholds, how long a health band's actions rest after firing, the lifecycle stages
    (None: none), how recent a mail must be to be credited with a goal, and the event
    catalogue names are compared with (None: none is flagged)."""

    journeys: Mapping[str, Journey]
    health: HealthDefinition | None
    tiers: TierThresholds
    action_cooldown: timedelta
    lifecycle: Lifecycle | None = None  # journeys/lifecycle.yaml; None: no stages
    attribution_window: timedelta = ATTRIBUTION_WINDOW  # a goal's credit: the last mail this recent
    catalogue: EventCatalogue | None = None


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
        tracked = store_and_react(session, events, rules, clock.now(), batched=submission.batched)
    if tracked.task_ids:
        notify(tracked.task_ids)
    return accepted(events, len(tracked.new), tracked.task_ids, rules.catalogue)


@dataclass(frozen=True)
class Tracked:
    """What one transaction did with a list of events: the customer id of each external id,
    the events stored for the first time, the CSM tasks opened."""

    customer_ids: Mapping[str, int]
    new: Sequence[NewEvent]
    task_ids: list[int]


def store_and_react(
    session: Session, events: Sequence[EventIn], rules: UsageRules, now: datetime, *, batched: bool
) -> Tracked:
    """Inside the caller's transaction: lock the events' customers, store the new events and
    react to them."""
    found = lock_event_customers(session, events, batched=batched)
    ids = {external_id: customer.id for external_id, customer in found.items()}
    new = store_new_events(session, event_rows(events, ids, now))
    tasks = react(session, new, rules, now, {c.id: c for c in found.values()})
    return Tracked(ids, new, tasks)


def accepted(
    events: Sequence[EventIn], stored: int, task_ids: list[int], catalogue: EventCatalogue | None
) -> EventsAccepted:
    """The answer to a request of ``events``, of which ``stored`` were new (a warning is logged
    for names outside the catalogue)."""
    outside = uncatalogued(events, catalogue)
    if outside:
        log.warning(
            "%d event(s) named outside the event catalogue, stored all the same: %s",
            sum(outside.values()),
            ", ".join(sorted(outside)[:20]),
        )
    return EventsAccepted(
        stored=stored,
        duplicates=len(events) - stored,
        task_ids=task_ids,
        uncatalogued=sum(outside.values()),
        uncatalogued_names=sorted(outside),
    )


def uncatalogued(events: Sequence[EventIn], catalogue: EventCatalogue | None) -> Counter[str]:
    """How many events of each name the catalogue does not hold (none without a catalogue)."""
    if catalogue is None:
        return Counter()
    known = catalogue.names()
    if known.issuperset({event.name for event in events}):  # the usual case: count nothing
        return Counter()
    return Counter(event.name for event in events if event.name not in known)


def react(
    session: Session,
    new: Sequence[NewEvent],
    rules: UsageRules,
    now: datetime,
    customers: Mapping[int, EventCustomer] | None = None,
) -> list[int]:
    """Inside the caller's transaction: journeys first (goals, exits, event steps), then the
    health score and risk signals, then the lifecycle stages of the customers the events are
    about; returns the CSM tasks opened. ``customers``, when the caller read them under their
    lock, saves reading them again (unless the journeys' reactions wrote a relationship)."""
    moved = react_to_events(session, new, rules.journeys, now, rules.attribution_window)
    tasks: list[int] = []
    health_inputs: Mapping[int, Mapping[str, Any]] = {}
    scores: Mapping[int, HealthScore] = {}
    if rules.health is not None:
        # The customers as read under their lock are what rescoring reads (HealthRow), unless
        # the journeys' reactions just wrote their relationship.
        known: Mapping[int, HealthRow] | None = None if moved else customers
        tasks += task_signals(session, new, rules.health, now, known=known)
        inputs = rules.health.input_events()
        touched = sorted({e.customer_id for e in new if e.name in inputs})
        rows = None if known is None else [known[cid] for cid in touched]
        health_inputs = load_inputs(session.connection(), rules.health, touched, now)
        rescored = rescore_customers(
            session,
            touched,
            rules.health,
            rules.journeys,
            rules.action_cooldown,
            now,
            rows=rows,
            inputs=health_inputs,
        )
        tasks += rescored.tasks
        scores = rescored.scores
    ids = [e.customer_id for e in new if e.name != STAGE_CHANGED]
    # The stage rules read the customers as locked, with the scores just stored: nothing
    # else in this transaction writes what they read (the journeys' reactions may write the
    # relationship, which the rules do not read).
    facts = None
    if customers is not None and rules.lifecycle is not None and ids:
        facts = _stage_facts(customers, scores)
    advance(session, ids, rules, now, health_inputs, facts)
    return tasks


def _stage_facts(
    customers: Mapping[int, EventCustomer], scores: Mapping[int, HealthScore]
) -> dict[int, StageRow]:
    """The customers as the stage rules read them: as locked, with the score just stored
    where it moved."""
    facts: dict[int, StageRow] = dict(customers)
    for cid, score in scores.items():
        c, health = customers[cid], (score.score, score.band)
        if health != (c.health_score, c.health_band):
            facts[cid] = StageFacts(
                cid, c.stage, c.stage_source, c.signed_up_at, c.tier, c.plan, *health
            )
    return facts


def advance(
    session: Session,
    customer_ids: Sequence[int],
    rules: UsageRules,
    now: datetime,
    health_inputs: Mapping[int, Mapping[str, Any]] | None = None,
    customers: Mapping[int, StageRow] | None = None,
) -> None:
    """Move these customers' stages as the lifecycle rules say; the ``stage_changed`` events
    are stored and enter the journeys waiting for them (they move no health score).
    ``health_inputs``: the customers' health inputs just read as of ``now``, which answer some
    of the rules' usage questions (the rest are read); ``customers``: what the rules read of
    them, as they stand now (else read)."""
    if rules.lifecycle is None or not customer_ids:
        return
    known = None
    if rules.health is not None and health_inputs:
        questions = stage_questions(rules.lifecycle)
        known = usage_answers(rules.health, health_inputs, questions)
    rows = advance_stages(
        session.connection(), customer_ids, rules.lifecycle, now, known, customers
    )
    react_to_events(session, store_new_events(session, rows), rules.journeys, now)
