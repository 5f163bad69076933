"""Recompute health scores and act on them, inside the caller's transaction.

A score that did not move only touches ``health_updated_at`` (at most once a minute); a new
score or band adds a history row and updates the customer. Band actions fire per
:func:`actions_to_fire`: mail actions enter the customer in a ``trigger: manual`` journey (so
the mail gets the pipeline's idempotency, suppression, windows and tier rendering), task
actions open a CSM task. Every fired action is a ``health_action`` row: the memory the
cool-down reads. Actions and signals step aside for a customer who cancelled, exited the
onboarding or just converted, unless their ``even_if`` says otherwise
(:mod:`orchestrator.customers.relationship`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, bindparam, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from orchestrator.customers.relationship import relationship_of
from orchestrator.db.json_text import json_text
from orchestrator.db.tables import customers, health_actions, health_score_history, usage_events
from orchestrator.db.values import one_of, one_of_param
from orchestrator.enrollment.store import enroll_customer, entering
from orchestrator.handoff.tasks import open_task
from orchestrator.health.inputs import load_inputs
from orchestrator.health.model import Action, HealthDefinition, MailAction, Signal
from orchestrator.health.score import ActionHistory, HealthScore, actions_to_fire, scores_of
from orchestrator.journeys.model import Journey
from orchestrator.usage.events import NewEvent
from orchestrator.webhooks.facts import customer_ref
from orchestrator.webhooks.outbox import emit

log = logging.getLogger(__name__)

# A score that did not move is stamped again (``health_updated_at``) only when its stamp is at
# least this old. A customer whose events come in every second would otherwise have its row
# rewritten every second to say nothing new: that write was ~6 ms of PostgreSQL's ~60–70 ms a
# batch of 1,000 events (bench/README, "Session 18"). ``health.updated_at`` is when the score
# was last computed, to within this much; a score that moved is always stamped.
RESTAMP_UNMOVED_AFTER = timedelta(minutes=1)


class HealthRow(Protocol):
    """What rescoring reads of a customer: its tier and sign-up (for band actions), the
    score and band it has now (to store only what moved) and where the relationship stands
    (:func:`~orchestrator.customers.relationship.relationship_of`). A :class:`CustomerHealth`
    read here, or a row the caller read with these columns (an event batch's customers, read
    under their lock, are rescored as they came: no tuple is built again per customer)."""

    @property
    def id(self) -> int: ...
    @property
    def tier(self) -> str: ...
    @property
    def signed_up_at(self) -> datetime: ...
    @property
    def health_score(self) -> int | None: ...
    @property
    def health_band(self) -> str | None: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def exited_at(self) -> datetime | None: ...
    @property
    def converted_at(self) -> datetime | None: ...


class CustomerHealth(NamedTuple):
    """A :class:`HealthRow` as rescoring reads it itself."""

    id: int
    tier: str
    signed_up_at: datetime
    health_score: int | None
    health_band: str | None
    cancelled_at: datetime | None = None  # the relationship, for actions that step aside
    exited_at: datetime | None = None
    converted_at: datetime | None = None


class Rescored(NamedTuple):
    """What rescoring did: the CSM tasks it opened, and each customer's score now (what a
    later rule in the same transaction reads of its health, without reading it again)."""

    tasks: list[int]
    scores: dict[int, HealthScore]


def rescore_customers(
    session: Session,
    customer_ids: Sequence[int],
    definition: HealthDefinition,
    journeys: Mapping[str, Journey],
    cooldown: timedelta,
    now: datetime,
    *,
    rows: Sequence[HealthRow] | None = None,
    inputs: Mapping[int, Mapping[str, Any]] | None = None,
) -> Rescored:
    """Score each customer now, store what changed, fire band actions.
    ``rows``: the customers as the caller already read them under their lock (else read here);
    ``inputs``: theirs as :func:`~orchestrator.health.inputs.load_inputs` read them now."""
    if not customer_ids:
        return Rescored([], {})
    connection = session.connection()
    if inputs is None:
        inputs = load_inputs(connection, definition, customer_ids, now)
    if rows is None:
        rows = _read_customers(connection, customer_ids)
    results = scores_of(definition, inputs, [row.id for row in rows])
    _store(connection, rows, results, now)
    due = {  # only these can fire anything: past the first days, with actions for their tier
        row.id
        for row in rows
        if now - row.signed_up_at >= definition.actions_after
        and any(row.tier in a.tiers for a in definition.band(results[row.id].band).actions)
    }
    histories = _action_histories(connection, {cid: results[cid] for cid in due})
    tasks: list[int] = []
    for row in rows:
        if row.id not in due:
            continue
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
    return Rescored(tasks, results)


def _read_customers(connection: Connection, customer_ids: Sequence[int]) -> list[CustomerHealth]:
    c = customers.c
    query = select(
        c.id,
        c.tier,
        c.signed_up_at,
        c.health_score,
        c.health_band,
        c.cancelled_at,
        c.exited_at,
        c.converted_at,
    ).where(one_of(c.id, customer_ids, connection.dialect.name))
    return [CustomerHealth._make(row) for row in connection.execute(query)]


def _store(
    connection: Connection,
    rows: Sequence[HealthRow],
    results: Mapping[int, HealthScore],
    now: datetime,
) -> None:
    """A history row and new latest values for the scores that moved; ``health_updated_at``
    for all: one statement when every score moved or none did (PostgreSQL), two otherwise."""
    moved = [
        row.id
        for row in rows
        if (results[row.id].score, results[row.id].band) != (row.health_score, row.health_band)
    ]
    if moved and connection.dialect.name == "postgresql":
        connection.execute(
            _STORE_MOVED_POSTGRES,
            {
                "ids": moved,
                "scores": [results[cid].score for cid in moved],
                "bands": [results[cid].band for cid in moved],
                "components": _components_json(results, moved),
                "now": now,
            },
        )
    elif moved:
        connection.execute(
            _INSERT_HISTORY,
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
            _UPDATE_SCORE,
            [
                {"cid": cid, "score": results[cid].score, "band": results[cid].band, "at": now}
                for cid in moved
            ],
        )
    moved_ids = set(moved)
    unmoved = [row.id for row in rows if row.id not in moved_ids]
    if unmoved:
        postgres = connection.dialect.name == "postgresql"
        stale = now - RESTAMP_UNMOVED_AFTER
        connection.execute(
            _TOUCH_SCORES[postgres], {"ids": unmoved, "now": now, "stamped_before": stale}
        )
    changed = [row for row in rows if results[row.id].band != row.health_band]
    if changed:
        emit(
            connection,
            "health.band_changed",
            lambda: _band_events(connection, changed, results),
            now,
        )


# PostgreSQL: the history rows and the customers' new scores in one statement whose text is
# the same for one customer or a thousand (the moved scores come as arrays, the components as
# one JSON array: a text[] of JSON texts is quoted and escaped element by element in Python).
_STORE_MOVED_POSTGRES = text("""
    WITH moved AS (
        SELECT * FROM ROWS FROM (unnest(CAST(:ids AS integer[])),
            unnest(CAST(:scores AS integer[])), unnest(CAST(:bands AS varchar[])),
            json_array_elements(CAST(:components AS json))) AS m(id, score, band, components)
    ), history AS (
        INSERT INTO health_score_history (customer_id, score, band, components, computed_at)
        SELECT id, score, band, components, :now FROM moved
    )
    UPDATE customer SET health_score = moved.score, health_band = moved.band,
        health_updated_at = :now
    FROM moved WHERE customer.id = moved.id
""")


def _components_json(results: Mapping[int, HealthScore], moved: Sequence[int]) -> str:
    """The moved scores' components as one JSON array: each element's text made once for
    all the scores with the same components (most customers share a few small inputs)."""
    return "[" + ",".join([results[cid].made_once(json_text) for cid in moved]) + "]"


# Built once (building costs more CPU than running them for one customer).
_TOUCH_SCORES = {  # the scores of ``:ids`` did not move: only when they were computed
    postgres: update(customers)
    .where(
        one_of_param(customers.c.id, "ids", postgres),
        or_(
            customers.c.health_updated_at.is_(None),
            customers.c.health_updated_at
            <= bindparam("stamped_before", type_=customers.c.health_updated_at.type),
        ),
    )
    .values(health_updated_at=bindparam("now"))
    for postgres in (False, True)
}
_INSERT_HISTORY = insert(health_score_history)
_UPDATE_SCORE = (
    update(customers)
    .where(customers.c.id == bindparam("cid"))
    .values(
        health_score=bindparam("score"),
        health_band=bindparam("band"),
        health_updated_at=bindparam("at"),
    )
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
    """Per customer: the band of the latest action, and when its new band last fired. One
    grouped query for the whole chunk (a row per customer and band), bounded by the
    customers' index range."""
    if not results:
        return {}
    actions = health_actions.c
    latest: dict[int, tuple[datetime, int, str]] = {}
    fired: dict[tuple[int, str], datetime] = {}
    query = (
        select(actions.customer_id, actions.band, func.max(actions.fired_at), func.max(actions.id))
        .where(one_of(actions.customer_id, list(results), connection.dialect.name))
        .group_by(actions.customer_id, actions.band)
    )
    for cid, band, at, last_id in connection.execute(query):
        fired[(cid, band)] = at
        if cid not in latest or (at, last_id) > latest[cid][:2]:
            latest[cid] = (at, last_id, band)
    return {
        cid: ActionHistory(latest[cid][2] if cid in latest else None, fired.get((cid, result.band)))
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
        entry = f"health:{band}:{now.isoformat()}"
        enroll_customer(session, customer_id, journey, entry, now, now, version_id=version_id)
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
    session: Session,
    events: Sequence[NewEvent],
    definition: HealthDefinition,
    now: datetime,
    *,
    known: Mapping[int, HealthRow] | None = None,
) -> list[int]:
    """At-risk signals (a detractor NPS, a burst of tickets) open a task for the CSM, unless
    the relationship says to step aside. ``known``: the customers as the caller read them
    under their lock (else read here, if a signal could apply)."""
    names = {signal.event for signal in definition.signals}
    events = [event for event in events if event.name in names]
    if not events:
        return []
    connection = session.connection()
    rows: Mapping[int, Any] | None = known
    if rows is None:
        query = select(
            customers.c.id,
            customers.c.tier,
            customers.c.cancelled_at,
            customers.c.exited_at,
            customers.c.converted_at,
        ).where(one_of(customers.c.id, {e.customer_id for e in events}, connection.dialect.name))
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
