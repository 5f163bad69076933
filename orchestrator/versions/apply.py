"""Carry out a plan (:class:`orchestrator.journeys.changes.GroupPlan`) on the rows of one group
of enrollments, inside the transaction that applies the version.

Every statement is conditional on the row still waiting and never tried (``pending``,
``dispatched`` or ``paused``, no attempt; a cancellation also takes rows waiting for a
retry; a paused row stays paused, and an added step of a paused enrollment is written
paused), so a row a worker took in the meantime is left to it: a worker's own claim
(``dispatched → sending``) and these statements exclude each other, whichever comes first.
Rows of a step that is now sent on an event instead are deleted when they never did anything
(so the event can write the step's row), cancelled otherwise. Returns what was done, in the
plan's terms, for the version's ``apply_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    Interval,
    Select,
    bindparam,
    case,
    delete,
    exists,
    literal,
    null,
    or_,
    select,
    update,
)

from orchestrator.db.tables import delivery_attempts, enrollments, provider_events, scheduled_sends
from orchestrator.db.upsert import (
    insert_many_ignoring_conflicts,
    insert_selected_ignoring_conflicts,
)
from orchestrator.journeys.changes import Add, Cancel, GroupPlan, Rename, Reschedule
from orchestrator.journeys.states import SendState
from orchestrator.versions.in_flight import OPEN, WAITING

_E = enrollments
_S = scheduled_sends
CHUNK = 500


def apply_group(
    connection: Connection,
    journey_id: str,
    plan: GroupPlan,
    version_id: int,
    now: datetime,
) -> dict[str, Any]:
    """Renames, cancellations, new times and new steps for the group, then its enrollments
    follow ``version_id``. Returns the counts."""
    done: dict[str, Any] = {"version_id": plan.version_id}
    if not plan.moves:
        done["enrollments"] = 0
        return done
    members = _members(journey_id, plan.version_id)
    done["renamed"] = {
        f"{r.old_id}→{r.new_id}": _rename(connection, members, r, now) for r in plan.renames
    }
    done["cancelled"] = {c.step_id: _cancel(connection, members, c, now) for c in plan.cancels}
    done["rescheduled"] = {
        s.step_id: _reschedule(connection, members, s, now) for s in plan.reschedules
    }
    done["added"] = {a.step_id: _add(connection, journey_id, members, a, now) for a in plan.adds}
    moved = connection.execute(update(_E).where(_E.c.id.in_(members)).values(version_id=version_id))
    done["enrollments"] = int(moved.rowcount)
    return done


def _members(journey_id: str, version_id: int | None) -> Select[tuple[int]]:
    version: ColumnElement[bool] = (
        _E.c.version_id.is_(None) if version_id is None else _E.c.version_id == version_id
    )
    return select(_E.c.id).where(_E.c.journey_id == journey_id, _E.c.state.in_(OPEN), version)


def _fresh(step_id: str) -> Sequence[ColumnElement[bool]]:
    return (_S.c.step_id == step_id, _S.c.state.in_(WAITING), _S.c.attempts == 0)


def _rename(
    connection: Connection, members: Select[tuple[int]], rename: Rename, now: datetime
) -> int:
    other = _S.alias("other")
    taken = exists(
        select(other.c.id).where(
            other.c.enrollment_id == _S.c.enrollment_id, other.c.step_id == rename.new_id
        )
    )
    result = connection.execute(
        update(_S)
        .where(_S.c.enrollment_id.in_(members), *_fresh(rename.old_id), ~taken)
        .values(step_id=rename.new_id, updated_at=now)
    )
    return int(result.rowcount)


def _cancel(
    connection: Connection, members: Select[tuple[int]], cancel: Cancel, now: datetime
) -> int:
    deleted = 0
    if cancel.kind == "unscheduled":
        untouched = ~exists(
            select(delivery_attempts.c.id).where(delivery_attempts.c.scheduled_send_id == _S.c.id)
        ) & ~exists(
            select(provider_events.c.id).where(provider_events.c.scheduled_send_id == _S.c.id)
        )
        result = connection.execute(
            delete(_S).where(_S.c.enrollment_id.in_(members), *_fresh(cancel.step_id), untouched)
        )
        deleted = int(result.rowcount)
    result = connection.execute(
        update(_S)
        .where(
            _S.c.enrollment_id.in_(members),
            _S.c.step_id == cancel.step_id,
            _S.c.state.in_(WAITING),
        )
        .values(state=SendState.CANCELLED.value, reason=cancel.reason[:1000], updated_at=now)
    )
    return deleted + int(result.rowcount)


def _reschedule(
    connection: Connection, members: Select[tuple[int]], change: Reschedule, now: datetime
) -> dict[str, int]:
    if connection.dialect.name == "postgresql":
        return _reschedule_in_database(connection, members, change, now)
    rows = connection.execute(
        select(_S.c.id, _S.c.state, _E.c.anchor_at)
        .select_from(_S.join(_E, _E.c.id == _S.c.enrollment_id))
        .where(_S.c.enrollment_id.in_(members), *_fresh(change.step_id))
        .with_for_update(of=_S)
    ).all()
    params = []
    missed = 0
    for row in rows:
        late = row.anchor_at < change.cutoff
        missed += late
        # A paused row stays paused: resuming moves it on by the time held, and then decides.
        held = row.state == SendState.PAUSED.value
        params.append(
            {
                "send_id": row.id,
                "due": row.anchor_at + change.new_offset,
                "new_state": row.state
                if held
                else SendState.MISSED.value
                if late
                else SendState.PENDING.value,
                "why": change.missed_reason if late and not held else change.reason,
            }
        )
    statement = (
        update(_S)
        .where(  # no IN (…): an executemany takes no expanding parameter
            _S.c.id == bindparam("send_id"),
            or_(*(_S.c.state == state for state in WAITING)),
            _S.c.attempts == 0,
        )
        .values(
            due_at=bindparam("due"),
            wake_at=bindparam("due"),
            state=bindparam("new_state"),
            reason=bindparam("why"),
            held_until=None,
            updated_at=now,
        )
    )
    for start in range(0, len(params), CHUNK):
        connection.execute(statement, params[start : start + CHUNK])
    return {"rows": len(params), "missed": missed}


def _reschedule_in_database(
    connection: Connection, members: Select[tuple[int]], change: Reschedule, now: datetime
) -> dict[str, int]:
    """:func:`_reschedule` as one ``UPDATE … FROM enrollment`` (PostgreSQL)."""
    held = _S.c.state == SendState.PAUSED.value
    late = _E.c.anchor_at < literal(change.cutoff, _S.c.updated_at.type)
    due = _E.c.anchor_at + literal(change.new_offset, Interval())
    result = connection.execute(
        update(_S)
        .where(_S.c.enrollment_id == _E.c.id, _E.c.id.in_(members), *_fresh(change.step_id))
        .values(
            due_at=due,
            wake_at=due,
            state=case(
                (held, _S.c.state), (late, SendState.MISSED.value), else_=SendState.PENDING.value
            ),
            reason=case((late & ~held, change.missed_reason), else_=change.reason),
            held_until=None,
            updated_at=now,
        )
        .returning(late)
    ).scalars()
    lateness = list(result)
    return {"rows": len(lateness), "missed": sum(bool(x) for x in lateness)}


def _add(
    connection: Connection, journey_id: str, members: Select[tuple[int]], add: Add, now: datetime
) -> dict[str, int]:
    has_row = exists(
        select(_S.c.id).where(_S.c.enrollment_id == _E.c.id, _S.c.step_id == add.step_id)
    )
    if connection.dialect.name == "postgresql":
        return _add_in_database(connection, journey_id, members, has_row, add, now)
    lacking = connection.execute(
        select(_E.c.id, _E.c.customer_id, _E.c.anchor_at, _E.c.state).where(
            _E.c.id.in_(members), ~has_row
        )
    ).all()
    rows = [
        {
            "enrollment_id": row.id,
            "customer_id": row.customer_id,
            "journey_id": journey_id,
            "step_id": add.step_id,
            "due_at": row.anchor_at + add.offset,
            "wake_at": row.anchor_at + add.offset,
            "state": _added_state(in_time, row.state),
            "reason": None if in_time else add.missed_reason,
            "updated_at": now,
        }
        for row in lacking
        for in_time in (row.anchor_at >= add.cutoff,)
    ]
    states = insert_many_ignoring_conflicts(
        connection, _S, rows, ["enrollment_id", "step_id"], returning="state"
    )
    past = sum(state == SendState.MISSED.value for state in states)
    return {"scheduled": len(states) - past, "past": past}


def _add_in_database(
    connection: Connection,
    journey_id: str,
    members: Select[tuple[int]],
    has_row: Exists,
    add: Add,
    now: datetime,
) -> dict[str, int]:
    """:func:`_add` as one ``INSERT … SELECT`` (PostgreSQL: the due time is the database's
    own interval arithmetic), so a change for many enrollments holds the journey's lock for
    as short as the database can write them."""
    moment = _S.c.updated_at.type
    due = _E.c.anchor_at + literal(add.offset, Interval())
    in_time = _E.c.anchor_at >= literal(add.cutoff, moment)
    state = case(
        (~in_time, SendState.MISSED.value),
        (_E.c.state == "paused", SendState.PAUSED.value),
        else_=SendState.PENDING.value,
    )
    source = select(
        _E.c.id,
        _E.c.customer_id,
        literal(journey_id),
        literal(add.step_id),
        due,
        due,
        state,
        case((~in_time, add.missed_reason), else_=null()),
        literal(now, moment),
    ).where(_E.c.id.in_(members), ~has_row)
    columns = (
        "enrollment_id",
        "customer_id",
        "journey_id",
        "step_id",
        "due_at",
        "wake_at",
        "state",
        "reason",
        "updated_at",
    )
    states = insert_selected_ignoring_conflicts(
        connection, _S, columns, source, ["enrollment_id", "step_id"], returning="state"
    )
    past = sum(state == SendState.MISSED.value for state in states)
    return {"scheduled": len(states) - past, "past": past}


def _added_state(in_time: bool, enrollment_state: str) -> str:
    """An added step's row: missed when its time is past, held when the enrollment is."""
    if not in_time:
        return SendState.MISSED.value
    return SendState.PAUSED.value if enrollment_state == "paused" else SendState.PENDING.value
