"""The moment mails are handed to the transport, written down before it happens.

A worker claims a batch of rows in one transaction and sends their mails a window at a time
(one mail, or as many as the transport posts side by side: ``STEPMAIL_SENDGRID_IN_FLIGHT``).
If it is killed mid-batch, only the window it was handing over at that instant may have left
without a trace; every other mail either went out and is recorded so, or never left and is
simply sent later, once. So around each window's transport calls:

- just before them, one committed statement inserts each row's ``delivery_attempt``, only
  while the row is still this worker's claim (``sending``, not dispatched again since), and
  records the previous window's ``sent`` mails on their attempts in the same statement;
- the rows' own ``sent`` is written for the whole batch at its end, as before, with what each
  mail was (the message archive, :mod:`orchestrator.archive`: one multi-row INSERT in that
  transaction, compressed before it opens).

So an attempt numbered like the row's ``attempts`` is the crash-proof mark of "this claim's
transport call began". The scheduler finds an expired ``sending`` row: without that attempt
its mail never left and the row is dispatched again like any lost message; with it, the row is
``stalled`` and :func:`recover_stalled` settles it (``sent`` if its attempt says so, else
resent by an idempotent transport, else reconciled or ``unknown``). The insert locks the row,
so a scheduler taking it back in the same instant either sees the attempt or makes the insert
find no row, and then nothing is sent.

This is the one database round trip per window on the send path; the claim, what the
decisions read and the rows' outcomes stay shared by the batch. On PostgreSQL it is one
autocommitted statement sent straight through the driver, on one connection the batch keeps
for its hand-overs (a pool check-out and two mode switches per mail cost more worker CPU than
the statement itself): ~0.09 ms of worker CPU, against ~0.17 ms through a SQLAlchemy
``Connection`` and twice the round trips inside a transaction. A window of eight mails pays
it once (bench/README, "Session 16").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    exists,
    insert,
    select,
    update,
)

from orchestrator.archive.store import ArchiveEntry, MailArchiver, write_archive
from orchestrator.db.tables import delivery_attempts, scheduled_sends
from orchestrator.db.types import UTCDateTime
from orchestrator.delivery.outcomes import record_sent
from orchestrator.delivery.reconciliation import close_lost_attempts, hold_stalled
from orchestrator.journeys.decide import Claim
from orchestrator.journeys.states import SendState
from orchestrator.transports.base import SendResult
from orchestrator.webhooks.facts import send_data
from orchestrator.webhooks.outbox import emit

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts

_RECORD_SENT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("sent_attempt"))
    .values(
        outcome="sent",
        provider_message_id=bindparam("sent_message_id"),
        finished_at=bindparam("sent_at", type_=UTCDateTime()),
    )
)
_INSERT_ATTEMPT = (
    insert(_ATTEMPTS)
    .from_select(
        ["scheduled_send_id", "attempt", "transport", "started_at"],
        select(
            _SENDS.c.id,
            _SENDS.c.attempts,
            bindparam("transport", type_=_ATTEMPTS.c.transport.type),
            bindparam("now", type_=UTCDateTime()),
        ).where(
            _SENDS.c.id == bindparam("send_id"),
            _SENDS.c.state == SendState.SENDING.value,
            _SENDS.c.dispatches == bindparam("dispatch"),
        ),
    )
    .returning(_ATTEMPTS.c.id)
)
# On PostgreSQL one statement does both (a data-modifying CTE runs whether or not it is read),
# and it is prepared, so its plan is made once per connection. A plan made while the attempts
# table was nearly empty (a fresh install, then a burst) scanned the whole table for the
# previous attempt, ~0.3 ms of server CPU a mail in the end-to-end bench; planning afresh
# every time cost ~0.2 ms. So the previous attempts are recorded with an upsert on their ids:
# ON CONFLICT goes through the primary key whatever the statistics say. (The rows always
# exist; were one gone, the values inserted would still be true.) The window's rows come as
# arrays joined by primary key, locked in id order (the scheduler's claim skips locked rows,
# so it never waits on a hand-over; should a deadlock come of a lease that ran out mid-batch,
# the server aborts the statement and nothing of that window is sent). The state is a
# parameter: as a literal it matches the predicate of the partial index on ``wake_at``, which
# a generic plan then scanned whole. FOR NO KEY UPDATE makes a concurrent claim and the
# hand-over take turns.
_RECORD_SENT_POSTGRES = """
INSERT INTO delivery_attempt
    (id, scheduled_send_id, attempt, transport, started_at, finished_at, outcome,
     provider_message_id)
SELECT sent.id, sent.send_id, sent.attempt, %(transport)s, sent.at, sent.at, 'sent',
       sent.message_id
FROM unnest(%(sent_attempts)s::integer[], %(sent_sends)s::integer[],
            %(sent_attempt_numbers)s::integer[], %(sent_message_ids)s::varchar[],
            %(sent_ats)s::timestamptz[]) AS sent(id, send_id, attempt, message_id, at)
ON CONFLICT (id) DO UPDATE
SET outcome = 'sent', provider_message_id = EXCLUDED.provider_message_id,
    finished_at = EXCLUDED.finished_at
"""
_HAND_OVER_POSTGRES = f"""
WITH recorded AS ({_RECORD_SENT_POSTGRES})
INSERT INTO delivery_attempt (scheduled_send_id, attempt, transport, started_at)
SELECT send.id, send.attempts, %(transport)s, %(now)s
FROM scheduled_send AS send
JOIN unnest(%(send_ids)s::integer[], %(dispatches)s::integer[]) AS claim(id, dispatch)
    ON send.id = claim.id AND send.dispatches = claim.dispatch
WHERE send.state = %(sending)s
ORDER BY send.id
FOR NO KEY UPDATE OF send
RETURNING scheduled_send_id, id
"""  # noqa: S608  (two constants of this module: no input reaches the text)
# A window of one mail after one sent mail (every window of a transport that sends one mail at
# a time) goes with scalars: the arrays cost it ~0.05 ms of worker and of server CPU a mail.
_HAND_OVER_ONE_POSTGRES = """
WITH recorded AS (
    INSERT INTO delivery_attempt (id, scheduled_send_id, attempt, transport, started_at)
    SELECT %(sent_attempt)s::integer, %(sent_send)s::integer, %(sent_attempt_number)s::integer,
           %(transport)s, %(sent_at)s::timestamptz
    WHERE %(sent_attempt)s::integer IS NOT NULL
    ON CONFLICT (id) DO UPDATE
    SET outcome = 'sent', provider_message_id = %(sent_message_id)s, finished_at = %(sent_at)s
)
INSERT INTO delivery_attempt (scheduled_send_id, attempt, transport, started_at)
SELECT id, attempts, %(transport)s, %(now)s
FROM scheduled_send
WHERE id = %(send_id)s AND state = %(sending)s AND dispatches = %(dispatch)s
FOR NO KEY UPDATE
RETURNING scheduled_send_id, id
"""
_GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
_PLANS_AS_BEFORE = "RESET plan_cache_mode"


@dataclass(frozen=True)
class _Sent:
    send_id: int
    attempt_id: int
    attempt_number: int
    message_id: str | None
    at: datetime


class HandOverLog:
    """One batch's hand-overs, on the record before each transport call (see the module)."""

    def __init__(
        self, engine: Engine, transport: str, archiver: MailArchiver | None = None
    ) -> None:
        self.engine, self.transport, self.archiver = engine, transport, archiver
        self._postgres = engine.dialect.name == "postgresql"
        self._unrecorded: list[_Sent] = []  # sent, their attempts still open
        self._sent_rows: list[tuple[int, SendResult, datetime]] = []
        self._autocommit: _AutocommitConnection | None = None  # PostgreSQL, for the batch
        self._archive: list[ArchiveEntry] = []

    def hand_over(self, claims: Sequence[Claim], now: datetime) -> dict[int, int]:
        """Each claim's new attempt id by send id, in one committed statement. A claim
        missing from the answer is no longer this worker's (its lease ran out and it was
        dispatched again): its mail must not be sent."""
        if self._postgres:
            if self._autocommit is None:
                self._autocommit = _AutocommitConnection(self.engine)
            common = {"sending": SendState.SENDING.value, "now": now}
            if len(claims) == 1 and len(self._unrecorded) <= 1:
                [claim] = claims
                params = {"send_id": claim.send_id, "dispatch": claim.dispatch, **common}
                attempts = self._autocommit.hand_over_one({**params, **self._sent_scalars()})
            else:
                send_ids = [claim.send_id for claim in claims]
                dispatches = [claim.dispatch for claim in claims]
                params = {"send_ids": send_ids, "dispatches": dispatches, **common}
                attempts = self._autocommit.hand_over_many({**params, **self._sent_arrays()})
            if self._autocommit.broken:
                self._autocommit = None
        else:
            with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE serialises writers
                self._record_attempts(connection)
                attempts = {}
                for claim in claims:
                    attempt_id = connection.execute(
                        _INSERT_ATTEMPT,
                        {
                            "send_id": claim.send_id,
                            "dispatch": claim.dispatch,
                            "sending": SendState.SENDING.value,
                            "transport": self.transport,
                            "now": now,
                        },
                    ).scalar()
                    if attempt_id is not None:
                        attempts[claim.send_id] = attempt_id
        self._unrecorded = []
        return attempts

    def sent(
        self,
        claim: Claim,
        attempt_id: int,
        result: SendResult,
        at: datetime,
        archive: ArchiveEntry | None = None,
    ) -> None:
        """The transport took the mail: its attempt is written with the next hand-over (or by
        :meth:`flush`), its row (and ``archive``, what it was) at :meth:`finish`."""
        self._unrecorded.append(
            _Sent(claim.send_id, attempt_id, claim.attempts, result.provider_message_id, at)
        )
        self._sent_rows.append((claim.send_id, result, at))
        if archive is not None:
            self._archive.append(archive)

    def flush(self) -> None:
        """Write the sent mails' attempts now (before a wait or another write of this
        batch)."""
        if self._unrecorded:
            with self.engine.begin() as connection:
                self._record_attempts(connection)

    def finish(self) -> None:
        """The batch's end: its sent rows become ``sent`` with the last attempt, together, and
        the mails they were are archived in the same transaction."""
        sent, self._sent_rows = self._sent_rows, []
        entries, self._archive = self._archive, []
        if not sent and not self._unrecorded:
            return
        archived = self.archive_rows(entries, max(at for _, _, at in sent)) if sent else []
        with self.engine.begin() as connection:
            self._record_attempts(connection)
            record_sent(connection, sent)
            write_archive(connection, archived)
            if sent:
                emit(connection, "mail.sent", lambda: _sent_events(connection, sent), sent[-1][2])
        log.info("%d sent via %s", len(sent), self.transport)

    def close(self) -> None:
        """Give the batch's hand-over connection back to the pool (always, even after an
        error: the delivery service calls it in a ``finally``)."""
        if self._autocommit is not None:
            self._autocommit.close()
            self._autocommit = None

    def archive_rows(self, entries: list[ArchiveEntry], at: datetime) -> list[dict[str, Any]]:
        """The archive rows of ``entries``, compressed now, outside any transaction."""
        if self.archiver is None or not entries:
            return []
        return self.archiver.rows(entries, at)

    def _record_attempts(self, connection: Connection) -> None:
        if not self._unrecorded:
            return
        if self._postgres:
            connection.exec_driver_sql(_RECORD_SENT_POSTGRES, self._sent_arrays())
        else:
            connection.execute(
                _RECORD_SENT,
                [
                    {
                        "sent_attempt": sent.attempt_id,
                        "sent_message_id": sent.message_id,
                        "sent_at": sent.at,
                    }
                    for sent in self._unrecorded
                ],
            )
        self._unrecorded = []

    def _sent_scalars(self) -> dict[str, Any]:
        """The one unrecorded sent mail (or none) as the one-mail statement's parameters."""
        sent = self._unrecorded[0] if self._unrecorded else None
        return {
            "transport": self.transport,
            "sent_send": None if sent is None else sent.send_id,
            "sent_attempt": None if sent is None else sent.attempt_id,
            "sent_attempt_number": None if sent is None else sent.attempt_number,
            "sent_message_id": None if sent is None else sent.message_id,
            "sent_at": None if sent is None else sent.at,
        }

    def _sent_arrays(self) -> dict[str, Any]:
        """The unrecorded sent mails as the arrays the PostgreSQL statements unnest."""
        unrecorded = self._unrecorded
        return {
            "transport": self.transport,
            "sent_sends": [sent.send_id for sent in unrecorded],
            "sent_attempts": [sent.attempt_id for sent in unrecorded],
            "sent_attempt_numbers": [sent.attempt_number for sent in unrecorded],
            "sent_message_ids": [sent.message_id for sent in unrecorded],
            "sent_ats": [sent.at for sent in unrecorded],
        }


class _AutocommitConnection:
    """One pooled connection in autocommit mode for a batch's hand-overs: each is one
    autocommitted statement straight through the driver (one round trip, committed before
    the transport call), without a pool check-out and mode switch per mail. A connection
    that failed mid-statement is invalidated, never given to anyone else.

    While it hands windows over, the server keeps one generic plan for their statement. Left to
    choose, it planned a one-mail window afresh every time: the generic plan's guess of ten
    rows per array looks dearer than a plan for the one row it is given, ~0.15 ms of server
    CPU a mail in the end-to-end bench. The setting is made on the first window and reset
    before the connection goes back to the pool."""

    def __init__(self, engine: Engine) -> None:
        self._raw = engine.raw_connection()
        driver: Any = self._raw.dbapi_connection
        self._driver = driver
        self.broken = False
        self._generic_plans = False
        self._driver.autocommit = True

    def hand_over_one(self, params: dict[str, Any]) -> dict[int, int]:
        return self._attempts(_HAND_OVER_ONE_POSTGRES, params)

    def hand_over_many(self, params: dict[str, Any]) -> dict[int, int]:
        if not self._generic_plans:
            self._guarded(_GENERIC_PLANS)
            self._generic_plans = True
        return self._attempts(_HAND_OVER_POSTGRES, params)

    def _attempts(self, statement: str, params: dict[str, Any]) -> dict[int, int]:
        rows = self._guarded(statement, params)
        return {int(send_id): int(attempt_id) for send_id, attempt_id in rows}

    def close(self) -> None:
        if self.broken:  # already invalidated and given back
            return
        if self._generic_plans:
            self._guarded(_PLANS_AS_BEFORE)
        try:
            self._driver.autocommit = False
        finally:
            self._raw.close()

    def _guarded(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        try:
            cursor = self._driver.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []
        except BaseException:
            self.broken = True
            self._raw.invalidate()
            self._raw.close()
            raise


def began(send_id: ColumnElement[int], attempts: ColumnElement[int]) -> ColumnElement[bool]:
    """True when the claim numbered ``attempts`` handed its mail over: its attempt exists."""
    return exists().where(_ATTEMPTS.c.scheduled_send_id == send_id, _ATTEMPTS.c.attempt == attempts)


def recover_stalled(
    connection: Connection,
    send_id: int,
    now: datetime,
    *,
    idempotent: bool,
    window: timedelta | None,
) -> bool:
    """Settle a ``stalled`` row, whose worker died after handing its mail over; True when it
    went back to ``dispatched`` for the caller to claim (nothing happens to other rows).

    It is ``sent`` when its attempt was recorded so. Otherwise the mail may or may not have
    left: an idempotent transport sends it again, any other holds it for reconciliation
    (``window`` given) or as ``unknown``
    (:func:`orchestrator.delivery.reconciliation.hold_stalled`).
    """
    if _settle_recorded(connection, send_id, now):
        log.info("send %d: its worker died after the transport took it; recorded as sent", send_id)
        return False
    if not idempotent:
        hold_stalled(connection, send_id, now, window)
        return False
    redone = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.STALLED.value)
        .values(state=SendState.DISPATCHED.value, reason="worker lost mid-send", updated_at=now)
        .returning(_SENDS.c.id)
    ).first()
    if redone is not None:
        close_lost_attempts(connection, send_id, now)
    return redone is not None


def _settle_recorded(connection: Connection, send_id: int, now: datetime) -> bool:
    """A stalled row whose current attempt is recorded ``sent`` becomes ``sent`` itself."""
    attempt = (
        select(_ATTEMPTS.c.finished_at, _ATTEMPTS.c.provider_message_id)
        .where(
            _ATTEMPTS.c.scheduled_send_id == _SENDS.c.id,
            _ATTEMPTS.c.attempt == _SENDS.c.attempts,
            _ATTEMPTS.c.outcome == "sent",
        )
        .limit(1)
    )
    settled = connection.execute(
        update(_SENDS)
        .where(
            _SENDS.c.id == send_id,
            _SENDS.c.state == SendState.STALLED.value,
            attempt.exists(),
        )
        .values(
            state=SendState.SENT.value,
            sent_at=attempt.with_only_columns(_ATTEMPTS.c.finished_at).scalar_subquery(),
            provider_message_id=attempt.with_only_columns(
                _ATTEMPTS.c.provider_message_id
            ).scalar_subquery(),
            reason=None,
            updated_at=now,
        )
        .returning(_SENDS.c.id)
    ).first()
    return settled is not None


def _sent_events(
    connection: Connection, sent: list[tuple[int, SendResult, datetime]]
) -> list[dict[str, Any]]:
    """``mail.sent`` data for a batch, read only when an endpoint subscribes."""
    known = send_data(connection, [send_id for send_id, _, _ in sent])
    return [
        {**known[send_id], "sent_at": at.isoformat()} for send_id, _, at in sent if send_id in known
    ]
