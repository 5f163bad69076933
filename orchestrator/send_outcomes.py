"""Writing down how a send ended: sent (a batch at once), failed, retried later, held as
unknown, skipped, or put back for a send slot; and ending an enrollment."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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

from orchestrator.db.models import SendState
from orchestrator.db.tables import delivery_attempts, enrollments, scheduled_sends
from orchestrator.decisions import Claim, Decision
from orchestrator.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.jitter import (
    BACKOFF_SPREAD,
    RECONCILE_SPREAD,
    REQUEUE_SPREAD,
    RandomSource,
    spread,
)
from orchestrator.reconciliation import hold_unknown
from orchestrator.runtime import Runtime
from orchestrator.transports.base import SendResult, is_reconcilable

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts
_ENROLLMENTS = enrollments
# An enrollment that can still end (an operator's pause holds it, but a goal, an exit or an
# operator still ends it), and the rows ending it cancels.
OPEN_ENROLLMENT = ("active", "paused")
NOT_YET_SENT = (SendState.PENDING, SendState.DISPATCHED, SendState.PAUSED)
RATE_LIMIT_REQUEUE = timedelta(
    seconds=1
)  # at the soonest, a row that found no send slot is tried again


def finish_without_sending(
    runtime: Runtime, claim: Claim, decision: Decision, now: datetime
) -> str:
    with runtime.engine.begin() as connection:
        set_state(connection, claim.send_id, decision.state, decision.reason, now)
        if decision.end_enrollment is not None:
            end_enrollment(connection, claim.enrollment_id, "exited", decision.end_enrollment, now)
    log.info("send %d %s: %s", claim.send_id, decision.state.value, decision.reason)
    return decision.state.value


def end_enrollment(
    connection: Connection, enrollment_id: int, state: str, reason: str, now: datetime
) -> None:
    """Close an enrollment and cancel its steps that have not gone out yet."""
    connection.execute(
        update(_ENROLLMENTS)
        .where(_ENROLLMENTS.c.id == enrollment_id, _ENROLLMENTS.c.state.in_(OPEN_ENROLLMENT))
        .values(state=state, ended_at=now, end_reason=reason[:500])
    )
    connection.execute(
        update(_SENDS)
        .where(
            _SENDS.c.enrollment_id == enrollment_id,
            _SENDS.c.state.in_([s.value for s in NOT_YET_SENT]),
        )
        .values(
            state=SendState.CANCELLED.value,
            reason=f"enrollment {state}: {reason}"[:1000],
            updated_at=now,
        )
    )


def record_sent(connection: Connection, sent: Sequence[tuple[int, SendResult, datetime]]) -> None:
    """Mark a batch's sent rows ``sent`` (``(send id, result, when)`` each); their attempts
    are recorded as the batch goes (see :mod:`orchestrator.hand_over`)."""
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


def record_failure(runtime: Runtime, claim: Claim, attempt_id: int, exc: DeliveryError) -> str:
    now = runtime.clock.now()
    error = str(exc)[:2000]
    if isinstance(exc, UnknownDeliveryOutcome):
        return record_unknown(runtime, claim, attempt_id, error, now)
    if (
        isinstance(exc, TransientDeliveryError)
        and claim.attempts < runtime.settings.max_send_attempts
    ):
        state, outcome, wake = (
            SendState.PENDING,
            "transient",
            now + retry_delay(claim.attempts, exc.retry_after, runtime.jitter),
        )
    else:
        assert isinstance(exc, (TransientDeliveryError, PermanentDeliveryError, DeliveryError))
        state, outcome, wake = SendState.FAILED, "permanent", now
    with runtime.engine.begin() as connection:
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == claim.send_id)
            .values(state=state.value, reason=error[:1000], wake_at=wake, updated_at=now)
        )
        finish_attempt(connection, attempt_id, outcome, error, None, now)
    log.warning("send %d attempt %d %s: %s", claim.send_id, claim.attempts, outcome, error)
    return state.value


def record_unknown(
    runtime: Runtime, claim: Claim, attempt_id: int, error: str, now: datetime
) -> str:
    """No answer after the request left: settled, reconciling or unknown (see
    :mod:`orchestrator.reconciliation`); never resent here."""
    with runtime.engine.begin() as connection:
        finish_attempt(connection, attempt_id, "unknown", error, None, now)
        hold = hold_unknown(
            connection,
            claim.send_id,
            reconcilable=is_reconcilable(runtime.transport),
            window=reconciliation_window(runtime),
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


def wait_for_send_slot(runtime: Runtime, claim: Claim) -> str:
    """No send slot under ``STEPMAIL_SEND_RATE_LIMIT`` in time: back to ``pending`` for the
    scheduler to dispatch again in a second. Nothing was handed over, so it costs no attempt."""
    now = runtime.clock.now()
    with runtime.engine.begin() as connection:
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == claim.send_id, _SENDS.c.state == SendState.SENDING.value)
            .values(
                state=SendState.PENDING.value,
                wake_at=now + spread(RATE_LIMIT_REQUEUE, runtime.jitter, REQUEUE_SPREAD),
                attempts=_SENDS.c.attempts - 1,
                reason="waiting for a send slot (STEPMAIL_SEND_RATE_LIMIT)",
                updated_at=now,
            )
        )
    log.info("send %d waits for a send slot", claim.send_id)
    return SendState.PENDING.value


def retry_delay(attempt: int, retry_after: float | None, jitter: RandomSource) -> timedelta:
    """Exponential backoff from 30 s, capped at an hour, never sooner than the provider asked,
    then stretched at random (see :mod:`orchestrator.jitter`)."""
    backoff = min(30 * 2 ** (attempt - 1), 3600)
    return spread(timedelta(seconds=max(backoff, retry_after or 0)), jitter, BACKOFF_SPREAD)


def reconciliation_window(runtime: Runtime) -> timedelta:
    """How long this unknown outcome waits for a provider event: ``RECONCILIATION_WINDOW``,
    stretched at random so the resends after an outage do not all leave together."""
    window = timedelta(seconds=runtime.settings.reconciliation_window)
    return spread(window, runtime.jitter, RECONCILE_SPREAD)


def set_state(
    connection: Connection, send_id: int, state: SendState, reason: str, now: datetime
) -> None:
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id)
        .values(state=state.value, reason=reason[:1000], updated_at=now)
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
