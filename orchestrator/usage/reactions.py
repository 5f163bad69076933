"""How journeys react to a customer's new events: goals, exits, event-triggered steps, waits
and journeys entered on an event. Runs inside the transaction that stored the events, so a
reaction is never lost or done twice: replayed events are not new and reach nothing here.

The relationship is kept on the way (:mod:`orchestrator.customers.relationship`): a
cancellation or reactivation, a goal reached, an exit from a signup journey. A journey entered
on an event steps aside for a customer in one of those situations unless its ``even_if``
lists it.

The race between the two branches of a wait is settled by one conditional UPDATE on the
timeout branch's row: the event branch is scheduled only if it moved that row from
``pending``/``dispatched`` to ``cancelled``. A worker takes a row with the same kind of
UPDATE (``dispatched → sending``), so whichever comes first wins and the other does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from orchestrator.analytics.attribution import attribute_conversion
from orchestrator.customers.relationship import CANCELLED_EVENT, REACTIVATED_EVENT
from orchestrator.db.planning import BINARY_RESULTS, PLAN_EACH_TIME
from orchestrator.db.tables import enrollments, scheduled_sends
from orchestrator.enrollment.relationship import (
    record_cancelled,
    record_converted,
    record_exited,
    record_reactivated,
    relationships,
)
from orchestrator.enrollment.store import (
    NOT_YET_SENT,
    OPEN_ENROLLMENT,
    end_enrollment,
    enroll_customer,
    entering,
    schedule_row,
    schedule_rows,
    schedule_step,
)
from orchestrator.journeys.catalog import JourneySet, followed_journey, is_versioned
from orchestrator.journeys.model import Journey, ReentryAfter, Step
from orchestrator.journeys.states import SendState
from orchestrator.usage.events import NewEvent
from orchestrator.versions.store import current_versions

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_ENROLLMENTS = enrollments
ATTRIBUTION_WINDOW = timedelta(days=7)  # STEPMAIL_ATTRIBUTION_WINDOW_DAYS' default


@dataclass(slots=True)
class _Active:
    id: int
    journey_id: str
    anchor_at: datetime
    version_id: int | None
    active: bool = True


def react_to_events(
    session: Session,
    events: Sequence[NewEvent],
    journeys: Mapping[str, Journey],
    now: datetime,
    attribution_window: timedelta = ATTRIBUTION_WINDOW,
) -> bool:
    """Apply every journey rule the new events meet, in the order they happened; a goal is
    credited to the last mail within ``attribution_window`` before it
    (:mod:`orchestrator.analytics.attribution`). Each enrollment reacts as the version it
    follows says; a version change being applied is waited for first (its journeys' current
    rows are held ``FOR SHARE``). Returns whether a customer's relationship was written (a
    cancellation, a reactivation, a goal or an exit): what the caller read of it is stale.

    Events no journey names (most logins) cost nothing here, not even a read, when the
    journeys are not versioned; versioned, an enrollment may follow another version than the
    current one (or a journey whose file is gone), whose rules only its enrollments tell, so
    they are read. The rows of event-triggered steps are written together at the end, in one
    statement, unless a rule that reads or changes an enrollment's rows comes first (then they
    are written before it).
    """
    if not is_versioned(journeys):
        names = reacting_event_names(journeys)
        events = [event for event in events if event.name in names]
    if not events:
        return False
    current_versions(session.connection(), list(journeys), share=True)
    pending = _PendingSteps()
    relationship_written = False
    active = _active_enrollments(session, {e.customer_id for e in events})
    triggers = _triggers_by_event(journeys)
    heard = _HeardEvents()
    # an enrollment's (journey, version) → the journey it follows and the names it hears:
    # looked up once a call, not once an event (most of a batch's customers are in one)
    followed: dict[tuple[str, int | None], tuple[Journey | None, frozenset[str]]] = {}
    for event in sorted(events, key=_IN_ORDER):
        if event.name in _RELATIONSHIP_EVENTS:
            relationship_written |= _note_relationship(session, event)
        for enrollment in active.get(event.customer_id, ()):
            if not enrollment.active or event.occurred_at < enrollment.anchor_at:
                continue
            version = (enrollment.journey_id, enrollment.version_id)
            found = followed.get(version)
            if found is None:
                journey = followed_journey(journeys, *version)
                names = frozenset() if journey is None else heard.by(journey)
                found = followed[version] = (journey, names)
            journey, names = found
            if journey is None or event.name not in names:
                continue  # no goal, exit, event step or wait of this journey names it
            if _ends_enrollment(
                session, journey, enrollment, event, now, attribution_window, pending
            ):
                relationship_written = True
                enrollment.active = False
                continue
            _schedule_event_steps(journey, enrollment, event, now, pending)
            _settle_waits(session, journey, enrollment, event, now, pending)
        candidates = triggers.get(event.name)
        if candidates:
            _enter_triggered_journeys(session, event, journeys, now, candidates)
    pending.write(session)
    return relationship_written


def reacting_event_names(journeys: Mapping[str, Journey]) -> frozenset[str]:
    """Every event name some journey reacts to (goals, exits, event steps, waits, triggers),
    and the events that change the relationship (:mod:`orchestrator.customers.relationship`)."""
    names: set[str] = {CANCELLED_EVENT, REACTIVATED_EVENT}
    for journey in journeys.values():
        names.update(enrollment_event_names(journey))
        names.update(match.event for match in journey.trigger_events)
    return frozenset(names)


def enrollment_event_names(journey: Journey) -> frozenset[str]:
    """The event names an enrollment in ``journey`` reacts to: its goal, exits, event steps and
    waits (each of them matches an event by its name first)."""
    names: set[str] = set()
    if journey.goal is not None:
        names.add(journey.goal.event)
    names.update(match.event for match in journey.exit_on_events)
    for step in journey.steps:
        if step.on_event is not None:
            names.add(step.on_event.event)
        if step.wait_for is not None:
            names.add(step.wait_for.event)
    return frozenset(names)


class _HeardEvents:
    """:func:`enrollment_event_names` per journey (and version) met in one call, so an event
    is checked against each enrollment's journey in one set look-up."""

    def __init__(self) -> None:
        self._names: dict[int, tuple[Journey, frozenset[str]]] = {}

    def by(self, journey: Journey) -> frozenset[str]:
        found = self._names.get(id(journey))
        if found is None or found[0] is not journey:  # held, so an id is never reused here
            found = self._names[id(journey)] = (journey, enrollment_event_names(journey))
        return found[1]


class _PendingSteps:
    """Event-step rows waiting to be written in one statement (the first per key wins, as
    the unique key would have it)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], dict[str, Any]] = {}

    def add(
        self,
        journey: Journey,
        enrollment_id: int,
        customer_id: int,
        step: Step,
        due: datetime,
        now: datetime,
    ) -> None:
        row = schedule_row(journey, enrollment_id, customer_id, step, due, now)
        self.rows.setdefault((enrollment_id, step.id), row)

    def write(self, session: Session) -> None:
        rows, self.rows = list(self.rows.values()), {}
        schedule_rows(session, rows)


def _active_enrollments(session: Session, customer_ids: set[int]) -> dict[int, list[_Active]]:
    postgres = session.get_bind().dialect.name == "postgresql"
    rows = session.execute(_OPEN_ENROLLMENTS[postgres], {"ids": sorted(customer_ids)}).all()
    found: dict[int, list[_Active]] = {}
    # Unpacked, not read by name: a row's attribute costs ~0.3 µs, and a batch has 1,000 rows.
    for enrollment_id, customer_id, journey_id, anchor_at, version_id in rows:
        found.setdefault(customer_id, []).append(
            _Active(enrollment_id, journey_id, anchor_at, version_id)
        )
    return found


def _open_enrollments(postgres: bool) -> Any:
    """The open enrollments of the customers ``:ids`` (one array parameter on PostgreSQL).

    Planned for its own ids each time on PostgreSQL, never from a prepared generic plan: a
    generic plan that reads the open enrollments through the state index checks each row's
    customer against the array item by item, where a plan made for the ids hashes them. On
    the event bench a batch's 1,000 customers took 11-12 ms that way against 0.5-0.7 ms
    (bench/README, "Session 29"), and the fewer enrollments are open against all, the likelier
    the state index."""
    e = _ENROLLMENTS.c
    if postgres:
        ids = e.customer_id == any_(bindparam("ids", type_=ARRAY(e.customer_id.type)))
    else:
        ids = e.customer_id.in_(bindparam("ids", expanding=True))
    query = select(e.id, e.customer_id, e.journey_id, e.anchor_at, e.version_id).where(
        ids,
        e.state.in_(OPEN_ENROLLMENT),  # a paused one still converts or exits
    )
    return query.execution_options(**PLAN_EACH_TIME, **BINARY_RESULTS) if postgres else query


# Built once per dialect: building it per call cost as much CPU as running it.
_OPEN_ENROLLMENTS = {postgres: _open_enrollments(postgres) for postgres in (False, True)}


_RELATIONSHIP_EVENTS = frozenset({CANCELLED_EVENT, REACTIVATED_EVENT})
_IN_ORDER = attrgetter("occurred_at", "event_key")  # the order events happened in


def _note_relationship(session: Session, event: NewEvent) -> bool:
    """Record a cancellation or a reactivation; True when the event was one."""
    if event.name == CANCELLED_EVENT:
        record_cancelled(session.connection(), event.customer_id, event.occurred_at)
    elif event.name == REACTIVATED_EVENT:
        record_reactivated(session.connection(), event.customer_id)
    else:
        return False
    return True


def _ends_enrollment(
    session: Session,
    journey: Journey,
    enrollment: _Active,
    event: NewEvent,
    now: datetime,
    attribution_window: timedelta,
    pending: _PendingSteps,
) -> bool:
    """A goal converts (credited to the last mail before it), an exit event exits; both cancel
    the steps not yet sent."""
    properties = dict(event.properties)
    if journey.goal is not None and journey.goal.matches(event.name, properties):
        state, reason = "converted", f"goal {event.name} at {event.occurred_at.isoformat()}"
        attribute_conversion(
            session.connection(), enrollment.id, event.occurred_at, attribution_window
        )
    elif any(m.matches(event.name, properties) for m in journey.exit_on_events):
        state, reason = "exited", f"exit event {event.name} at {event.occurred_at.isoformat()}"
    else:
        return False
    pending.write(session)  # rows it must cancel are written first
    connection = session.connection()
    end_enrollment(connection, enrollment.id, state, reason, now)
    if state == "converted":
        record_converted(connection, event.customer_id, event.occurred_at)
    elif journey.trigger == "signup":
        record_exited(connection, event.customer_id, event.occurred_at)
    log.info("enrollment %d %s: %s", enrollment.id, state, reason)
    return True


def _schedule_event_steps(
    journey: Journey, enrollment: _Active, event: NewEvent, now: datetime, pending: _PendingSteps
) -> None:
    for step in journey.steps:
        if step.on_event is not None and step.on_event.matches(event.name, dict(event.properties)):
            pending.add(
                journey,
                enrollment.id,
                event.customer_id,
                step,
                event.occurred_at + step.after,
                now,
            )


def _settle_waits(
    session: Session,
    journey: Journey,
    enrollment: _Active,
    event: NewEvent,
    now: datetime,
    pending: _PendingSteps,
) -> None:
    for step in journey.steps:
        wait = step.wait_for
        if wait is None or wait.event != event.name:
            continue
        pending.write(session)  # the rows the wait reads and cancels are written first
        start = enrollment.anchor_at + step.after
        if event.occurred_at > start + wait.timeout:
            continue  # came after the timeout: the timeout branch stands
        if wait.if_seen is not None and _has_row(session, enrollment.id, wait.if_seen):
            continue  # an earlier event already took the branch
        if wait.if_timeout is not None and not _cancel_timeout_branch(
            session, enrollment.id, wait.if_timeout, event, now
        ):
            continue  # the timeout branch is already on its way: it won the race
        if wait.if_seen is not None:
            branch = journey.step(wait.if_seen)
            due = max(event.occurred_at, start) + branch.after
            schedule_step(session, journey, enrollment.id, event.customer_id, branch, due, now)


def _cancel_timeout_branch(
    session: Session, enrollment_id: int, step_id: str, event: NewEvent, now: datetime
) -> bool:
    result = session.execute(
        update(_SENDS)
        .where(
            _SENDS.c.enrollment_id == enrollment_id,
            _SENDS.c.step_id == step_id,
            _SENDS.c.state.in_([s.value for s in NOT_YET_SENT]),
        )
        .values(
            state=SendState.CANCELLED.value,
            reason=f"waited-for {event.name} came at {event.occurred_at.isoformat()}",
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _has_row(session: Session, enrollment_id: int, step_id: str) -> bool:
    query = select(_SENDS.c.id).where(
        _SENDS.c.enrollment_id == enrollment_id, _SENDS.c.step_id == step_id
    )
    return session.execute(query).first() is not None


def _triggers_by_event(journeys: Mapping[str, Journey]) -> dict[str, list[str]]:
    """Event name → the journeys (in their order) with a trigger on that name: what each
    event's entries are looked up in, instead of every journey's triggers per event. Kept for
    the last JourneySet seen (the catalogue's, replaced, never changed, when files change)."""
    if type(journeys) is JourneySet:
        last = _LAST_TRIGGERS.get("set")
        if last is None or last[0] is not journeys:
            last = _LAST_TRIGGERS["set"] = (journeys, _index_triggers(journeys))
        return last[1]
    return _index_triggers(journeys)


_LAST_TRIGGERS: dict[str, tuple[JourneySet, dict[str, list[str]]]] = {}


def _index_triggers(journeys: Mapping[str, Journey]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for journey_id, journey in journeys.items():
        for name in dict.fromkeys(t.event for t in journey.trigger_events):
            found.setdefault(name, []).append(journey_id)
    return found


def _enter_triggered_journeys(
    session: Session,
    event: NewEvent,
    journeys: Mapping[str, Journey],
    now: datetime,
    candidates: Sequence[str],
) -> None:
    """Enter the journeys among ``candidates`` (those with a trigger on the event's name) that
    the event, properties included, triggers."""
    if not candidates:
        return
    properties = dict(event.properties)
    triggered = [
        journey_id
        for journey_id in candidates
        if any(t.matches(event.name, properties) for t in journeys[journey_id].trigger_events)
    ]
    if not triggered:
        return
    for journey, version_id in entering(session.connection(), journeys, triggered):
        if not any(t.matches(event.name, properties) for t in journey.trigger_events):
            continue  # the current version is entered otherwise
        relationship = relationships(session.connection(), [event.customer_id])
        in_the_way = relationship[event.customer_id].in_the_way(journey.even_if, now)
        if in_the_way is not None:
            log.info(
                "customer %d not entered in %s on %s: %s",
                event.customer_id,
                journey.id,
                event.name,
                in_the_way,
            )
            continue
        entry_key = _entry_key(session, journey, event)
        if entry_key is None:
            continue
        enroll_customer(
            session,
            event.customer_id,
            journey,
            entry_key,
            event.occurred_at,
            now,
            version_id=version_id,
        )


def _entry_key(session: Session, journey: Journey, event: NewEvent) -> str | None:
    """never: one entry per customer; always: one per event; after N: none within N of the last."""
    if journey.reentry == "never":  # one entry, whichever of its trigger events comes first
        return f"event:{journey.trigger_events[0].event}"
    if isinstance(journey.reentry, ReentryAfter):
        last = session.execute(
            select(func.max(_ENROLLMENTS.c.anchor_at)).where(
                _ENROLLMENTS.c.customer_id == event.customer_id,
                _ENROLLMENTS.c.journey_id == journey.id,
            )
        ).scalar()
        if last is not None and event.occurred_at < last + journey.reentry.after:
            return None
    return f"event:{event.name}:{event.event_key}"[:200]
