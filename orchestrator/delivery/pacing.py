"""Whether a send that should go may go *now*: send windows, quiet days and the frequency cap.

Planned by :func:`pacing_plan` and written by :func:`apply_pacing`, which the delivery service calls
after every reason not to send was ruled out. A send that must wait gets a :class:`Deferral`: its
row goes back to ``pending`` with ``wake_at`` at the next moment it may go and a ``reason`` that
says why. A deferral is not an attempt.

The row's ``held_until`` keeps the moment it was deferred to, so the journey's grace (how late a
mail may still go) counts from there, not from the original due time: a step deferred over a
weekend is not missed on Monday. Once admitted here a send's ``admitted_at`` is stamped, so a
later requeue (the rate limiter) does not make it look late either, and the frequency cap
counts it while it is in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select, update

from orchestrator.customers.timezones import zone
from orchestrator.db.locks import lock_customers
from orchestrator.db.rows import named_rows
from orchestrator.db.tables import scheduled_sends
from orchestrator.db.values import one_of
from orchestrator.journeys.deferral import Deferral, deferral_reason, send_rules, window_deferral
from orchestrator.journeys.frequency_cap import (
    CappedSend,
    CapRule,
    cap_wait,
    parse_frequency_cap,
)
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.send_window import (
    SendWindow,
    next_opening,
)
from orchestrator.journeys.states import ACTIVE_SEND_STATES, SendState

log = logging.getLogger(__name__)

_SENDS = scheduled_sends


@dataclass(frozen=True)
class PacingRules:
    """The installation's pacing settings, as they are written (parsed when used)."""

    send_window: str | None  # STEPMAIL_SEND_WINDOW
    quiet_days: str  # STEPMAIL_QUIET_DAYS
    frequency_cap: str | None  # STEPMAIL_FREQUENCY_CAP
    default_timezone: str  # for a customer whose own zone is unknown


@dataclass(frozen=True)
class PacingPlan:
    """What pacing must write for one send, decided before any transaction: the window's
    deferral (pure), or a frequency cap to count under the customer's lock, or the
    ``admitted_at`` stamp of a send that was held before."""

    send_id: int
    customer_id: int
    window: SendWindow | None
    quiet: frozenset[date]
    local_zone: ZoneInfo
    deferral: Deferral | None
    cap: str | None  # the cap to count, when the window is open and the step is not exempt
    was_held: bool


def pacing_plan(
    rules: PacingRules,
    send_id: int,
    customer_id: int,
    journey: Journey,
    step: Step,
    timezone: str,
    now: datetime,
    *,
    was_held: bool = False,
) -> PacingPlan | None:
    """None when the send may go now and nothing needs writing (the common case); else the
    plan :func:`apply_pacing` carries out in one transaction.

    ``was_held``: the row was deferred before, so admitting it stamps ``admitted_at``.
    """
    window, quiet = send_rules(rules.send_window, rules.quiet_days, journey)
    local_zone = zone(timezone or rules.default_timezone)
    deferral = window_deferral(window, quiet, local_zone, now)
    capped = deferral is None and bool(rules.frequency_cap) and not step.transactional
    if deferral is None and not capped and not was_held:
        return None
    cap = rules.frequency_cap if capped else None
    return PacingPlan(send_id, customer_id, window, quiet, local_zone, deferral, cap, was_held)


def apply_pacing(
    connection: Connection,
    plans: Sequence[PacingPlan],
    journeys: Mapping[str, Journey],
    now: datetime,
) -> list[Deferral | None]:
    """Write a batch's plans in the caller's transaction, in order: each send's deferral (back
    to ``pending``), or its admission; None for a send that may go now.

    The frequency cap is counted under a lock on all the capped customers at once (taken in
    id order, so two workers cannot deadlock), from one read of their sends. Each decision
    then counts the ones before it in the batch as they were just written (an admitted send
    holds its slot, a deferred one waits), so a batch decides exactly as one transaction
    per send did: one lock, one read and one commit a batch instead of one each a mail.
    """
    caps = {plan.send_id: parse_frequency_cap(plan.cap) for plan in plans if plan.cap}
    sends: dict[int, dict[int, CappedSend]] = {}
    if caps:
        customer_ids = sorted({plan.customer_id for plan in plans if plan.send_id in caps})
        lock_customers(connection, customer_ids)
        since = now - max(rule.period for rules in caps.values() for rule in rules)
        sends = _capped_sends(connection, journeys, customer_ids, since)
    decided: list[Deferral | None] = []
    admitted: list[int] = []
    for plan in plans:
        deferral, was_held = plan.deferral, plan.was_held
        known = sends.get(plan.customer_id, {})
        rules = caps.get(plan.send_id)
        if rules is not None:
            deferral = _cap_deferral(plan, rules, known, now)
            was_held = True  # an admitted capped send holds its slot from now on
        mine = known.get(plan.send_id)
        if deferral is not None:
            _defer(connection, plan.send_id, deferral, now)
            log.info("send %d %s", plan.send_id, deferral.reason)
            if mine is not None:
                known[plan.send_id] = replace(
                    mine, state=SendState.PENDING.value, wake_at=deferral.wake_at, sent_at=None
                )
        elif was_held:
            admitted.append(plan.send_id)
            if mine is not None:
                known[plan.send_id] = replace(mine, sent_at=now)
        decided.append(deferral)
    _stamp_admitted(connection, admitted, now)
    return decided


def _cap_deferral(
    plan: PacingPlan, rules: Sequence[CapRule], sends: Mapping[int, CappedSend], now: datetime
) -> Deferral | None:
    """The cap's answer for one send, from its customer's sends read under the lock."""
    mine = sends.get(plan.send_id)
    if mine is None:
        return None
    others = [send for send_id, send in sends.items() if send_id != plan.send_id]
    wait = cap_wait(rules, mine, others, now)
    if wait is None:
        return None
    until, why = wait
    opening = next_opening(plan.window, plan.quiet, plan.local_zone, until) or until
    return Deferral(opening, deferral_reason(opening, why))


def _capped_sends(
    connection: Connection,
    journeys: Mapping[str, Journey],
    customer_ids: Sequence[int],
    since: datetime,
) -> dict[int, dict[int, CappedSend]]:
    """Customer id → send id → each of their sends that is still to go or went out since
    ``since``, minus the transactional ones (exempt). Few rows per customer, read through the
    customer index."""
    rows = named_rows(  # each row's columns are read by name: see db/rows.py
        connection.execute(
            select(
                _SENDS.c.id,
                _SENDS.c.customer_id,
                _SENDS.c.journey_id,
                _SENDS.c.step_id,
                _SENDS.c.due_at,
                _SENDS.c.wake_at,
                _SENDS.c.state,
                _SENDS.c.admitted_at,
                _SENDS.c.sent_at,
            ).where(
                one_of(_SENDS.c.customer_id, customer_ids, connection.dialect.name),
                or_(
                    _SENDS.c.state.in_([s.value for s in ACTIVE_SEND_STATES]),
                    _SENDS.c.sent_at > since,
                    _SENDS.c.admitted_at > since,
                ),
            )
        )
    )
    found: dict[int, dict[int, CappedSend]] = {cid: {} for cid in customer_ids}
    for row in rows:
        if _is_transactional(journeys, row.journey_id, row.step_id):
            continue
        found[row.customer_id][row.id] = CappedSend(
            row.id, row.due_at, row.wake_at, row.state, row.admitted_at or row.sent_at
        )
    return found


def _is_transactional(journeys: Mapping[str, Journey], journey_id: str, step_id: str) -> bool:
    journey = journeys.get(journey_id)
    if journey is None:
        return False
    try:
        return journey.step(step_id).transactional
    except KeyError:
        return False


def _defer(connection: Connection, send_id: int, deferral: Deferral, now: datetime) -> None:
    """Back to ``pending`` until ``wake_at``; the claim's attempt is given back."""
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.SENDING.value)
        .values(
            state=SendState.PENDING.value,
            wake_at=deferral.wake_at,
            attempts=_SENDS.c.attempts - 1,
            reason=deferral.reason[:1000],
            held_until=deferral.wake_at,
            admitted_at=None,
            updated_at=now,
        )
    )


def _stamp_admitted(connection: Connection, send_ids: Sequence[int], now: datetime) -> None:
    if send_ids:
        connection.execute(
            update(_SENDS)
            .where(
                one_of(_SENDS.c.id, list(send_ids), connection.dialect.name),
                _SENDS.c.state == SendState.SENDING.value,
            )
            .values(admitted_at=now)
        )
