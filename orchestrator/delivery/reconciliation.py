"""Exactly-once accounting for a transport with no idempotency key (SendGrid).

When a request may have reached the provider but no answer came back, resending could mail
the customer twice and not resending could mail them never. A *reconcilable* transport tags
every mail with our send id, which its event webhook echoes back, so such a send waits in
``reconciling`` for ``STEPMAIL_RECONCILIATION_WINDOW`` seconds:

- an event carrying its id arrives (``processed``, ``delivered``, or any later one): the
  mail left; the row becomes ``sent`` and is never resent;
- the window passes with no event: the scheduler wakes the row (``dispatched`` again) and a
  worker resends it, once. A second unknown outcome stays ``unknown`` for a human to look at.

Until a worker takes the row, an event still wins: a worker takes a ``dispatched`` row only if
no event has been reported for it, and settles it as ``sent`` otherwise. Duplicate or late
broker messages find a ``reconciling`` row untakeable, so nothing resends before the window.
The functions here run inside the caller's transaction; the row's state is the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, exists, func, or_, select, update

from orchestrator.db.tables import delivery_attempts, provider_events, scheduled_sends
from orchestrator.journeys.states import SendState

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts
_EVENTS = provider_events

# Attempt outcomes that leave open whether the mail went out.
AMBIGUOUS_OUTCOMES = ("unknown", "lost")
# The states an event proves wrong: the mail did leave.
SETTLEABLE_STATES = (SendState.RECONCILING.value, SendState.UNKNOWN.value)
# The states of a row that has not been (re)sent yet; with an event reported, it need not be.
WAITING_STATES = (SendState.RECONCILING.value, SendState.DISPATCHED.value)


@dataclass(frozen=True)
class Hold:
    """Where a send with an unknown outcome goes next, and why."""

    state: SendState
    wake_at: datetime
    reason: str


def reported(send_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """True when the provider has reported any event for this send: proof that it left."""
    return exists().where(_EVENTS.c.scheduled_send_id == send_id)


def takeable(send_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A ``dispatched`` row no event has been reported for: a worker may send it.

    A first send never has events; a row woken after its reconciliation window may have
    gained one since the scheduler claimed it, and then it must not be sent again.
    """
    return (_SENDS.c.state == SendState.DISPATCHED.value) & ~reported(send_id)


def ambiguous_attempts(connection: Connection, send_id: int) -> int:
    """Attempts of this send that may or may not have delivered (unanswered or lost)."""
    query = select(func.count()).where(
        _ATTEMPTS.c.scheduled_send_id == send_id,
        or_(_ATTEMPTS.c.outcome.in_(AMBIGUOUS_OUTCOMES), _ATTEMPTS.c.outcome.is_(None)),
    )
    return int(connection.execute(query).scalar_one())


def hold_unknown(
    connection: Connection,
    send_id: int,
    *,
    reconcilable: bool,
    window: timedelta,
    now: datetime,
    error: str,
) -> Hold:
    """Decide the state of a send whose last attempt has an unknown outcome.

    Call it after that attempt is recorded as ambiguous, so it counts itself.
    """
    if connection.execute(select(reported(send_id))).scalar():
        return Hold(SendState.SENT, now, "outcome unknown, but a provider event shows it left")
    if reconcilable and ambiguous_attempts(connection, send_id) <= 1:
        return Hold(
            SendState.RECONCILING,
            now + window,
            f"{error} — waiting up to {window} for a provider event before the one resend",
        )
    return Hold(SendState.UNKNOWN, now, error)


def hold_stalled(
    connection: Connection, send_id: int, now: datetime, window: timedelta | None
) -> bool:
    """A ``stalled`` row (its worker died mid-send) of a non-idempotent transport.

    Its unfinished attempt is closed as ``lost``. With a reconcilable transport (``window``
    given) the row waits for an event like any unknown outcome; otherwise it is ``unknown``.
    """
    stalled = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.STALLED.value)
        .values(state=SendState.UNKNOWN.value, reason="worker lost mid-send", updated_at=now)
        .returning(_SENDS.c.id)
    ).first()
    if stalled is None:
        return False
    close_lost_attempts(connection, send_id, now)
    if window is None:
        return True
    hold = hold_unknown(
        connection, send_id, reconcilable=True, window=window, now=now, error="worker lost"
    )
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id)
        .values(state=hold.state.value, wake_at=hold.wake_at, reason=hold.reason[:1000])
    )
    return True


def close_lost_attempts(connection: Connection, send_id: int, now: datetime) -> None:
    """The attempts of a dead worker's send that never got an outcome: ``lost``."""
    connection.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.scheduled_send_id == send_id, _ATTEMPTS.c.outcome.is_(None))
        .values(outcome="lost", error="worker lost mid-send", finished_at=now)
    )


def settle_if_reported(connection: Connection, send_id: int, now: datetime) -> bool:
    """A row waiting to be (re)sent for which an event has arrived becomes ``sent``."""
    settled = connection.execute(
        update(_SENDS)
        .where(
            _SENDS.c.id == send_id,
            _SENDS.c.state.in_(WAITING_STATES),
            reported(send_id),
        )
        .values(
            state=SendState.SENT.value,
            sent_at=func.coalesce(_SENDS.c.sent_at, now),
            reason="settled by a provider event",
            updated_at=now,
        )
        .returning(_SENDS.c.id)
    ).first()
    return settled is not None


def settle_from_event(
    connection: Connection,
    send_id: int,
    *,
    event: str,
    occurred_at: datetime,
    provider_message_id: str | None,
    now: datetime,
) -> bool:
    """What the webhook does for every event carrying our send id: a ``reconciling`` or
    ``unknown`` row becomes ``sent`` (no resend); True if it was one."""
    settled = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state.in_(SETTLEABLE_STATES))
        .values(
            state=SendState.SENT.value,
            sent_at=occurred_at,
            provider_message_id=func.coalesce(_SENDS.c.provider_message_id, provider_message_id),
            reason=f"settled by a provider {event} event",
            updated_at=now,
        )
        .returning(_SENDS.c.id)
    ).first()
    return settled is not None
