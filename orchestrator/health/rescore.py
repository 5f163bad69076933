"""Recompute health scores and act on them, inside the caller's transaction.

A score that did not move only touches ``health_updated_at``; a new score or band adds a
history row and updates the customer. Band actions fire per :func:`actions_to_fire`: mail
actions enter the customer in a ``trigger: manual`` journey (so the mail gets the pipeline's
idempotency, suppression, windows and tier rendering), task actions open a CSM task. Every
fired action is a ``health_action`` row: the memory the cool-down reads. Actions and signals
step aside for a customer who cancelled, exited the onboarding or just converted, unless their
``even_if`` says otherwise (:mod:`orchestrator.customers.relationship`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from orchestrator.customers.relationship import relationship_of
from orchestrator.db.models import Customer
from orchestrator.db.tables import customers, health_actions, health_score_history, usage_events
from orchestrator.enrollment.store import enroll_in_journey, entering
from orchestrator.handoff.tasks import open_task
from orchestrator.health.inputs import load_inputs
from orchestrator.health.model import Action, HealthDefinition, MailAction, Signal
from orchestrator.health.score import ActionHistory, HealthScore, actions_to_fire, score
from orchestrator.journeys.model import Journey
from orchestrator.usage.events import NewEvent
from orchestrator.webhooks.facts import customer_ref
from orchestrator.webhooks.outbox import emit

log = logging.getLogger(__name__)


def rescore_customers(
    session: Session,
    customer_ids: Sequence[int],
    definition: HealthDefinition,
    journeys: Mapping[str, Journey],
    cooldown: timedelta,
    now: datetime,
) -> list[int]:
    """Score each customer now, store what changed, fire band actions; returns new task ids."""
    if not customer_ids:
        return []
    connection = session.connection()
    inputs = load_inputs(connection, definition, customer_ids, now)
    rows = connection.execute(
        select(
            customers.c.id,
            customers.c.tier,
            customers.c.signed_up_at,
            customers.c.health_score,
            customers.c.health_band,
            customers.c.cancelled_at,
            customers.c.exited_at,
            customers.c.converted_at,
        ).where(customers.c.id.in_(customer_ids))
    ).all()
    results = {row.id: score(definition, inputs[row.id]) for row in rows}
    _store(connection, rows, results, now)
    histories = _action_histories(connection, results)
    tasks: list[int] = []
    for row in rows:
        result = results[row.id]
        band = definition.band(result.band)
        actions = actions_to_fire(
            definition, band, row.tier, row.signed_up_at, histories[row.id], cooldown, now
        )
        relationship = relationship_of(row)
        for action in actions:
            in_the_way = relationship.in_the_way(action.even_if, now)
            if in_the_way is not None:
                log.info(
                    "customer %d band %s: %s steps aside (%s)",
                    row.id,
                    band.id,
                    action.kind,
                    in_the_way,
                )
                continue
            task = _fire(session, row.id, band.id, result, action, journeys, now)
            if task is not None:
                tasks.append(task)
    return tasks


def _store(
    connection: Connection, rows: Sequence[Any], results: Mapping[int, HealthScore], now: datetime
) -> None:
    """A history row and new latest values for the scores that moved, in batched statements;
    ``health_updated_at`` for all."""
    moved = [
        row.id
        for row in rows
        if (results[row.id].score, results[row.id].band) != (row.health_score, row.health_band)
    ]
    if moved:
        connection.execute(
            insert(health_score_history),
            [
                {
                    "customer_id": cid,
                    "score": results[cid].score,
                    "band": results[cid].band,
                    "components": results[cid].components,
                    "computed_at": now,
                }
                for cid in moved
            ],
        )
        connection.execute(
            update(customers)
            .where(customers.c.id == bindparam("cid"))
            .values(health_score=bindparam("score"), health_band=bindparam("band")),
            [{"cid": cid, "score": results[cid].score, "band": results[cid].band} for cid in moved],
        )
    connection.execute(
        update(customers).where(customers.c.id.in_(list(results))).values(health_updated_at=now)
    )
    changed = [row for row in rows if results[row.id].band != row.health_band]
    if changed:
        emit(
            connection,
            "health.band_changed",
            lambda: _band_events(connection, changed, results),
            now,
        )


def _band_events(
    connection: Connection, rows: Sequence[Any], results: Mapping[int, HealthScore]
) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": customer_ref(connection, row.id),
            "from": row.health_band,
            "to": results[row.id].band,
            "score": results[row.id].score,
        }
        for row in rows
    ]


def _action_histories(
    connection: Connection, results: Mapping[int, HealthScore]
) -> dict[int, ActionHistory]:
    """Per customer: the band of the latest action, and when its new band last fired. Two
    queries for the whole chunk, each bounded by the customers' index range."""
    actions = health_actions.c
    ids = list(results)
    ranked = (
        select(
            actions.customer_id,
            actions.band,
            func.row_number()
            .over(
                partition_by=actions.customer_id,
                order_by=(actions.fired_at.desc(), actions.id.desc()),
            )
            .label("rank"),
        )
        .where(actions.customer_id.in_(ids))
        .subquery()
    )
    last_band = {
        cid: band
        for cid, band in connection.execute(
            select(ranked.c.customer_id, ranked.c.band).where(ranked.c.rank == 1)
        )
    }
    fired = {
        (cid, band): at
        for cid, band, at in connection.execute(
            select(actions.customer_id, actions.band, func.max(actions.fired_at))
            .where(actions.customer_id.in_(ids))
            .group_by(actions.customer_id, actions.band)
        )
    }
    return {
        cid: ActionHistory(last_band.get(cid), fired.get((cid, result.band)))
        for cid, result in results.items()
    }


def _fire(
    session: Session,
    customer_id: int,
    band: str,
    result: HealthScore,
    action: Action,
    journeys: Mapping[str, Journey],
    now: datetime,
) -> int | None:
    connection = session.connection()
    task: int | None = None
    if isinstance(action, MailAction):
        name = f"mail:{action.journey}"
        entered = entering(connection, journeys, [action.journey])
        if not entered:
            log.error("health action names no journey %r; skipped", action.journey)
            return None
        journey, version_id = entered[0]
        customer = session.get(Customer, customer_id)
        assert customer is not None
        entry = f"health:{band}:{now.isoformat()}"
        enroll_in_journey(session, customer, journey, entry, now, now, version_id=version_id)
    else:
        name = "csm_task"
        reason = f"health score {result.score} entered band {band}"
        task = open_task(connection, customer_id, f"health_{band}", reason, action.due, now)
    connection.execute(
        insert(health_actions).values(customer_id=customer_id, band=band, action=name, fired_at=now)
    )
    log.info("customer %d entered health band %s: %s", customer_id, band, name)
    return task


def task_signals(
    session: Session, events: Sequence[NewEvent], definition: HealthDefinition, now: datetime
) -> list[int]:
    """At-risk signals (a detractor NPS, a burst of tickets) open a task for the CSM."""
    if not definition.signals or not events:
        return []
    connection = session.connection()
    query = select(
        customers.c.id,
        customers.c.tier,
        customers.c.cancelled_at,
        customers.c.exited_at,
        customers.c.converted_at,
    ).where(customers.c.id.in_({e.customer_id for e in events}))
    rows = {row.id: row for row in connection.execute(query)}
    tasks = []
    for event in events:
        row = rows[event.customer_id]
        for signal in definition.signals:
            if signal.event != event.name or row.tier not in signal.tiers:
                continue
            if relationship_of(row).in_the_way(signal.even_if, now) is not None:
                continue
            reason = _signal_reason(connection, signal, event, now)
            if reason is None:
                continue
            task = open_task(connection, event.customer_id, signal.id, reason, signal.due, now)
            if task is not None:
                tasks.append(task)
    return tasks


def _signal_reason(
    connection: Connection, signal: Signal, event: NewEvent, now: datetime
) -> str | None:
    if signal.property is not None and signal.at_most is not None:
        value = event.properties.get(signal.property)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value <= signal.at_most
        ):
            comment = event.properties.get("comment")
            said = f": “{comment}”" if isinstance(comment, str) and comment.strip() else ""
            return f"{signal.id}: {event.name} {signal.property}={value}{said}"
        return None
    assert signal.count_at_least is not None and signal.within is not None
    count = connection.execute(
        select(func.count())
        .select_from(usage_events)
        .where(
            usage_events.c.customer_id == event.customer_id,
            usage_events.c.name == event.name,
            usage_events.c.occurred_at > now - signal.within,
            usage_events.c.occurred_at <= now,
        )
    ).scalar_one()
    if count >= signal.count_at_least:
        return f"{signal.id}: {count} × {event.name} in {signal.within.days}d"
    return None
