"""The human end of "never resent blindly": list the sends whose outcome stayed unknown, and
settle each one as sent, to resend, or to skip.

A send is ``unknown`` when the transport may have taken the mail but said nothing (an SMTP
connection lost after ``DATA``, or a SendGrid send whose one reconciling resend was unknown
too). Only someone who looked (the provider's activity log, the recipient) can say which it
was, so nothing here decides by itself. Settling is a conditional UPDATE on ``unknown``: two
people settling the same send cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, func, select, text, update

from orchestrator.db.models import UNKNOWN_SEND_SQL
from orchestrator.db.tables import customers, delivery_attempts, scheduled_sends
from orchestrator.errors import SendNotFound, SendNotUnknown
from orchestrator.journeys.states import SendState

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts


class Settlement(StrEnum):
    SENT = "sent"  # it did go out: record it, never send it again
    RESEND = "resend"  # it did not: send it again at the next tick
    SKIP = "skip"  # leave it unsent


@dataclass(frozen=True)
class UnknownSend:
    send_id: int
    email: str
    journey_id: str
    step_id: str
    attempts: int
    reason: str | None
    since: datetime


_UNKNOWN = text(f"scheduled_send.{UNKNOWN_SEND_SQL}")


def list_unknown(connection: Connection, limit: int = 100) -> list[UnknownSend]:
    """The sends waiting for a human, oldest first."""
    rows = connection.execute(
        select(
            _SENDS.c.id,
            customers.c.email,
            _SENDS.c.journey_id,
            _SENDS.c.step_id,
            _SENDS.c.attempts,
            _SENDS.c.reason,
            _SENDS.c.updated_at,
        )
        .join(customers, customers.c.id == _SENDS.c.customer_id)
        .where(_UNKNOWN)  # the literal predicate of its partial index: found, never scanned
        .order_by(_SENDS.c.updated_at, _SENDS.c.id)
        .limit(limit)
    )
    return [UnknownSend(*row) for row in rows]


def settle_unknown(
    connection: Connection, send_id: int, settlement: Settlement, note: str, now: datetime
) -> None:
    """Move an ``unknown`` send on as a person decided; any other state is refused by name."""
    reason = f"settled by hand as {settlement.value}" + (f": {note}" if note else "")
    values: dict[str, object] = {"reason": reason[:1000], "updated_at": now}
    if settlement is Settlement.SENT:
        # When it left is not known; the last attempt's start is the closest we have.
        values |= {
            "state": SendState.SENT.value,
            "sent_at": _last_attempt_start(connection, send_id),
        }
    elif settlement is Settlement.RESEND:
        values |= {"state": SendState.PENDING.value, "wake_at": now}
    else:
        values |= {"state": SendState.SKIPPED.value}
    settled = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.UNKNOWN.value)
        .values(**values)
    )
    if settled.rowcount == 1:
        return
    state = connection.execute(select(_SENDS.c.state).where(_SENDS.c.id == send_id)).scalar()
    if state is None:
        raise SendNotFound(f"SEND_ID: there is no send {send_id}")
    raise SendNotUnknown(f"SEND_ID: send {send_id} is {state}, not unknown: nothing to settle")


def _last_attempt_start(connection: Connection, send_id: int) -> datetime | None:
    return connection.execute(
        select(func.max(_ATTEMPTS.c.started_at)).where(_ATTEMPTS.c.scheduled_send_id == send_id)
    ).scalar()
