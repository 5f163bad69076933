"""What is in flight in a journey: its open enrollments (active, or paused by an operator),
grouped by the version they follow, and their rows step by step
(:class:`orchestrator.journeys.changes.InFlightGroup`). Read inside the caller's transaction:
by ``stepmail plan`` (read-only) and by the transaction that applies a change, so both plan
from the same facts.

Counts come from one grouped query over the rows of active enrollments; the anchors a plan
needs (of the enrollments a step is rescheduled or added for) are read only for those steps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, func, select

from orchestrator.db.tables import enrollments, scheduled_sends
from orchestrator.journeys.changes import InFlightGroup, StepRows
from orchestrator.journeys.states import OPEN_ENROLLMENT_STATES, SendState

_E = enrollments
_S = scheduled_sends

# Rows a change may still move: waiting for their time, or held by an operator's pause (they
# keep ``paused``; resuming moves them on by the time held, as any other).
WAITING = (SendState.PENDING.value, SendState.DISPATCHED.value, SendState.PAUSED.value)
OPEN = OPEN_ENROLLMENT_STATES
IN_HAND = (SendState.SENDING.value, SendState.STALLED.value, SendState.RECONCILING.value)
GroupKey = int | None


def active_groups(connection: Connection, journey_id: str) -> dict[GroupKey, int]:
    """Version id (None: none recorded) → how many active enrollments follow it."""
    rows = connection.execute(
        select(_E.c.version_id, func.count())
        .where(_E.c.journey_id == journey_id, _E.c.state.in_(OPEN))
        .group_by(_E.c.version_id)
    )
    return {row[0]: int(row[1]) for row in rows}


def read_in_flight(
    connection: Connection,
    journey_id: str,
    groups: Mapping[GroupKey, int],
    detail: Mapping[GroupKey, Collection[str]] | None = None,
    anchors_for: Collection[GroupKey] = (),
) -> dict[GroupKey, InFlightGroup]:
    """Each group's rows by step (counts), with the anchors of ``detail`` steps' enrollments
    and, for ``anchors_for`` groups, every enrollment's anchor."""
    counts: dict[GroupKey, dict[str, StepRows]] = {key: {} for key in groups}
    query = (
        select(
            _E.c.version_id,
            _S.c.step_id,
            _S.c.state,
            _S.c.attempts,
            func.count().label("n"),
        )
        .select_from(_S.join(_E, _E.c.id == _S.c.enrollment_id))
        .where(_E.c.journey_id == journey_id, _E.c.state.in_(OPEN))
        .group_by(_E.c.version_id, _S.c.step_id, _S.c.state, _S.c.attempts)
    )
    for row in connection.execute(query):
        steps = counts.setdefault(row.version_id, {})
        rows = steps.get(row.step_id, StepRows())
        steps[row.step_id] = _count(rows, row.state, row.attempts == 0, row.n)
    anchors: dict[tuple[GroupKey, str], list[datetime]] = {}
    fresh: dict[tuple[GroupKey, str], list[datetime]] = {}
    for key, step_id, anchor, state, attempts in _detail_rows(connection, journey_id, detail or {}):
        anchors.setdefault((key, step_id), []).append(anchor)
        if state in WAITING and attempts == 0:
            fresh.setdefault((key, step_id), []).append(anchor)
    for key, step_id in anchors:
        steps = counts.setdefault(key, {})
        steps[step_id] = replace(
            steps.get(step_id, StepRows()),
            anchors=tuple(sorted(anchors[key, step_id])),
            fresh_anchors=tuple(sorted(fresh.get((key, step_id), []))),
        )
    every = _enrollment_anchors(connection, journey_id, anchors_for)
    return {
        key: InFlightGroup(key, size, counts.get(key, {}), tuple(every.get(key, ())))
        for key, size in groups.items()
    }


def _count(rows: StepRows, state: str, fresh: bool, n: int) -> StepRows:
    if state in WAITING:
        if fresh:
            return replace(rows, fresh=rows.fresh + n)
        return replace(rows, retrying=rows.retrying + n)
    if state in IN_HAND:
        return replace(rows, in_hand=rows.in_hand + n)
    if state == SendState.SENT.value:
        return replace(rows, sent=rows.sent + n)
    return replace(rows, ended=rows.ended + n)


def _detail_rows(
    connection: Connection, journey_id: str, detail: Mapping[GroupKey, Collection[str]]
) -> list[tuple[GroupKey, str, datetime, str, int]]:
    steps = sorted({step for wanted in detail.values() for step in wanted})
    if not steps:
        return []
    query = (
        select(_E.c.version_id, _S.c.step_id, _E.c.anchor_at, _S.c.state, _S.c.attempts)
        .select_from(_S.join(_E, _E.c.id == _S.c.enrollment_id))
        .where(_E.c.journey_id == journey_id, _E.c.state.in_(OPEN), _S.c.step_id.in_(steps))
    )
    return [
        (row.version_id, row.step_id, row.anchor_at, row.state, row.attempts)
        for row in connection.execute(query)
        if row.step_id in detail.get(row.version_id, ())
    ]


def _enrollment_anchors(
    connection: Connection, journey_id: str, wanted: Collection[GroupKey]
) -> dict[GroupKey, list[datetime]]:
    if not wanted:
        return {}
    found: dict[GroupKey, list[datetime]] = {}
    query = select(_E.c.version_id, _E.c.anchor_at).where(
        _E.c.journey_id == journey_id, _E.c.state.in_(OPEN)
    )
    for row in connection.execute(query):
        if row.version_id in wanted:
            found.setdefault(row.version_id, []).append(row.anchor_at)
    for anchors in found.values():
        anchors.sort()
    return found
