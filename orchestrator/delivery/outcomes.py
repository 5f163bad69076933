"""Writing down how a send ended: sent (a batch at once), failed, retried later, held as
unknown, skipped, or put back for a send slot. Each runs inside the transaction the delivery
service opens for it (:mod:`orchestrator.services.delivery`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    String,
    Update,
    bindparam,
    column,
    func,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from orchestrator.db.tables import delivery_attempts, scheduled_sends
from orchestrator.delivery.jitter import (
    BACKOFF_SPREAD,
    RECONCILE_SPREAD,
    REQUEUE_SPREAD,
    RandomSource,
    spread,
)
from orchestrator.delivery.reconciliation import hold_unknown
from orchestrator.enrollment.store import end_enrollment
from orchestrator.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.handoff.holds import hold_send
from orchestrator.journeys.decide import Claim, Decision
from orchestrator.journeys.states import SendState
from orchestrator.transports.base import SendResult

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts
RATE_LIMIT_REQUEUE = timedelta(
    seconds=1
)  # at the soonest, a row that found no send slot is tried again


def finish_without_sending(
    connection: Connection, ended: Sequence[tuple[Claim, Decision]], now: datetime
) -> dict[int, str]:
    """Each row ends as ``decide`` said (skipped, missed, cancelled, failed), or waits held
    for an open CSM task; an exit rule also ends the enrollment. The plain endings of a batch
    are one statement (executed for each row); send id → the state each row is now in."""
    states: dict[int, str] = {}
    plain: list[dict[str, Any]] = []
    exits: list[tuple[int, str]] = []
    for claim, decision in ended:
        states[claim.send_id] = decision.state.value
        if decision.held_by_task is not None:
            hold_send(
                connection,
                claim.send_id,
                claim.customer_id,
                decision.held_by_task,
                decision.reason,
                now,
            )
            log.info("send %d held: %s", claim.send_id, decision.reason)
            continue
        plain.append(_state_row(claim.send_id, decision.state, decision.reason, now))
        if decision.end_enrollment is not None:
            exits.append((claim.enrollment_id, decision.end_enrollment))
        log.info("send %d %s: %s", claim.send_id, decision.state.value, decision.reason)
    if plain:
        connection.execute(_SET_STATE, plain)
    for enrollment_id, reason in exits:  # after the rows' own states, as one by one
        end_enrollment(connection, enrollment_id, "exited", reason, now)
    return states


def record_sent(connection: Connection, sent: Sequence[tuple[int, SendResult, datetime]]) -> None:
    """Mark a batch's sent rows ``sent`` (``(send id, result, when)`` each); their attempts
    are recorded as the batch goes (see :mod:`orchestrator.delivery.hand_over`)."""
    if not sent:
        return
    if connection.dialect.name == "postgresql":
        columns: dict[str, list[Any]] = {
            "send_ids": [send_id for send_id, _, _ in sent],
            "ats": [at for _, _, at in sent],
            "message_ids": [result.provider_message_id for _, result, _ in sent],
        }
        connection.execute(_SENT_FROM_ARRAYS, columns)
    else:
        each = [
            {"send_id": send_id, "at": at, "message_id": result.provider_message_id}
            for send_id, result, at in sent
        ]
        connection.execute(_SENT_EACH, each)


def _sent_statement(
    send_id: ColumnElement[int], at: ColumnElement[datetime], message_id: ColumnElement[str]
) -> Update:
    """The update that records sent mails, over per-row values however they arrive."""
    return (
        update(_SENDS)
        .where(_SENDS.c.id == send_id)
        .values(
            state=SendState.SENT.value,
            sent_at=at,
            reason=None,
            provider_message_id=message_id,
            updated_at=at,
        )
    )


# On PostgreSQL a batch is one statement, joined on the primary key to the rows passed as
# arrays. With one statement per row, a plan cached while the table looked empty (a fresh
# install, then a burst) scanned the whole table once per mail: 1.3 ms each in a 20,000-mail
# bench. The arrays keep the statement text fixed, so SQLAlchemy compiles it once (a VALUES
# list would be compiled for every batch). SQLite, embedded and in-process, runs the same
# update once per row.
_SENT = (
    func.unnest(
        bindparam("send_ids", type_=ARRAY(Integer)),
        bindparam("ats", type_=ARRAY(DateTime(timezone=True))),
        bindparam("message_ids", type_=ARRAY(String)),
    )
    .table_valued(
        column("send_id", Integer),
        column("at", DateTime(timezone=True)),
        column("message_id", String),
    )
    .render_derived(name="sent")
)
_SENT_FROM_ARRAYS = _sent_statement(_SENT.c.send_id, _SENT.c.at, _SENT.c.message_id)
_SENT_EACH = _sent_statement(bindparam("send_id"), bindparam("at"), bindparam("message_id"))


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed send is tried again: attempts, the random share of each wait, and (for a
    transport that can tell) the window an unknown outcome waits for a provider event."""

    max_attempts: int
    jitter: RandomSource
    reconciliation_window: timedelta
    reconcilable: bool


def record_failure(
    connection: Connection,
    claim: Claim,
    attempt_id: int,
    exc: DeliveryError,
    now: datetime,
    policy: RetryPolicy,
) -> str:
    """A transport call failed: retried after a jittered backoff (transient), failed for good
    (permanent, or out of attempts), or held when its outcome is unknown."""
    error = str(exc)[:2000]
    if isinstance(exc, UnknownDeliveryOutcome):
        return record_unknown(connection, claim, attempt_id, error, now, policy)
    if isinstance(exc, TransientDeliveryError) and claim.attempts < policy.max_attempts:
        state, outcome, wake = (
            SendState.PENDING,
            "transient",
            now + retry_delay(claim.attempts, exc.retry_after, policy.jitter),
        )
    else:
        assert isinstance(exc, (TransientDeliveryError, PermanentDeliveryError, DeliveryError))
        state, outcome, wake = SendState.FAILED, "permanent", now
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == claim.send_id)
        .values(state=state.value, reason=error[:1000], wake_at=wake, updated_at=now)
    )
    finish_attempt(connection, attempt_id, outcome, error, None, now)
    log.warning("send %d attempt %d %s: %s", claim.send_id, claim.attempts, outcome, error)
    return state.value


def record_unknown(
    connection: Connection,
    claim: Claim,
    attempt_id: int,
    error: str,
    now: datetime,
    policy: RetryPolicy,
) -> str:
    """No answer after the request left: settled, reconciling or unknown (see
    :mod:`orchestrator.delivery.reconciliation`); never resent here."""
    finish_attempt(connection, attempt_id, "unknown", error, None, now)
    hold = hold_unknown(
        connection,
        claim.send_id,
        reconcilable=policy.reconcilable,
        window=reconciliation_window(policy.reconciliation_window, policy.jitter),
        now=now,
        error=error,
    )
    values = {"state": hold.state.value, "reason": hold.reason[:1000], "wake_at": hold.wake_at}
    if hold.state is SendState.SENT:
        values["sent_at"] = now
    connection.execute(
        update(_SENDS).where(_SENDS.c.id == claim.send_id).values(**values, updated_at=now)
    )
    log.warning("send %d attempt %d %s: %s", claim.send_id, claim.attempts, hold.state, error)
    return hold.state.value


def wait_for_send_slot(
    connection: Connection, claim: Claim, now: datetime, jitter: RandomSource
) -> str:
    """No send slot under ``STEPMAIL_SEND_RATE_LIMIT`` in time: back to ``pending`` for the
    scheduler to dispatch again in a second. Nothing was handed over, so it costs no attempt."""
    wake_at = now + spread(RATE_LIMIT_REQUEUE, jitter, REQUEUE_SPREAD)
    if not _requeue(
        connection, claim, wake_at, "waiting for a send slot (STEPMAIL_SEND_RATE_LIMIT)", now
    ):
        return "ignored"
    log.info("send %d waits for a send slot", claim.send_id)
    return SendState.PENDING.value


def hand_back(connection: Connection, claims: Sequence[Claim], now: datetime) -> dict[int, str]:
    """The worker is stopping (:mod:`orchestrator.delivery.stopping`): rows it claimed but
    never handed over go back to ``pending``, due at once, for the next worker. Nothing left,
    so it costs no attempt. One statement a row: this runs once, as a worker stops."""
    reason = "handed back: the worker was stopping before it sent it"
    outcomes = {
        claim.send_id: SendState.PENDING.value
        if _requeue(connection, claim, now, reason, now)
        else "ignored"
        for claim in claims
    }
    handed = sum(outcome == SendState.PENDING.value for outcome in outcomes.values())
    log.info("%d sends handed back: the worker is stopping", handed)
    return outcomes


def _requeue(
    connection: Connection, claim: Claim, wake_at: datetime, reason: str, now: datetime
) -> bool:
    """A claimed row that never left back to ``pending`` until ``wake_at``, its attempt given
    back; False when it is no longer this worker's (taken back and dispatched again: another
    worker may be sending it), which is then left alone."""
    params = {
        "send_id": claim.send_id,
        "dispatch": claim.dispatch,
        "wake": wake_at,
        "why": reason,
        "now": now,
    }
    return connection.execute(_REQUEUE, params).rowcount == 1


_REQUEUE = (
    update(_SENDS)
    .where(
        _SENDS.c.id == bindparam("send_id"),
        _SENDS.c.state == SendState.SENDING.value,
        _SENDS.c.dispatches == bindparam("dispatch"),
    )
    .values(
        state=SendState.PENDING.value,
        wake_at=bindparam("wake"),
        attempts=_SENDS.c.attempts - 1,
        reason=bindparam("why"),
        updated_at=bindparam("now"),
    )
)


def retry_delay(attempt: int, retry_after: float | None, jitter: RandomSource) -> timedelta:
    """Exponential backoff from 30 s, capped at an hour, never sooner than the provider asked,
    then stretched at random (see :mod:`orchestrator.delivery.jitter`)."""
    backoff = min(30 * 2 ** (attempt - 1), 3600)
    return spread(timedelta(seconds=max(backoff, retry_after or 0)), jitter, BACKOFF_SPREAD)


def reconciliation_window(window: timedelta, jitter: RandomSource) -> timedelta:
    """How long this unknown outcome waits for a provider event: ``RECONCILIATION_WINDOW``,
    stretched at random so the resends after an outage do not all leave together."""
    return spread(window, jitter, RECONCILE_SPREAD)


def set_state(
    connection: Connection, send_id: int, state: SendState, reason: str, now: datetime
) -> None:
    connection.execute(_SET_STATE, _state_row(send_id, state, reason, now))


def _state_row(send_id: int, state: SendState, reason: str, now: datetime) -> dict[str, Any]:
    return {"send_id": send_id, "state": state.value, "reason": reason[:1000], "at": now}


# Built once: building the statement cost more CPU than running it.
_SET_STATE = (
    update(_SENDS)
    .where(_SENDS.c.id == bindparam("send_id"))
    .values(state=bindparam("state"), reason=bindparam("reason"), updated_at=bindparam("at"))
)


def finish_attempt(
    connection: Connection,
    attempt_id: int,
    outcome: str,
    error: str | None,
    provider_message_id: str | None,
    now: datetime,
) -> None:
    connection.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.id == attempt_id)
        .values(
            outcome=outcome, error=error, provider_message_id=provider_message_id, finished_at=now
        )
    )
