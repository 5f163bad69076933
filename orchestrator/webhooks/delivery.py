"""Claiming, posting and recording webhook messages.

Order: an endpoint's messages go out in ``id`` order, one at a time. Only the head of each
endpoint's queue (its oldest ``pending``/``delivering`` message) is ever claimed, so a message
that keeps failing holds the ones behind it until it is delivered or given up (``failed``).
A claim is a conditional UPDATE to ``delivering`` with a lease in ``next_attempt_at``; a
scheduler that dies mid-delivery leaves the lease to run out and the message is claimed again
(receivers deduplicate on ``webhook-id``, the same on every attempt).
Retries: exponential backoff (5 s, 10 s, 20 s… capped at an hour) stretched by up to half
again at random, ``STEPMAIL_WEBHOOK_MAX_ATTEMPTS`` attempts, then ``failed`` (replayable).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import Connection, and_, func, insert, select, update

from orchestrator.db.tables import webhook_attempts, webhook_endpoints, webhook_messages
from orchestrator.webhooks.signing import signed_headers

_M, _E = webhook_messages, webhook_endpoints
OPEN_STATES = ("pending", "delivering")
FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(hours=1)
RESPONSE_KEPT = 500  # characters of an answer kept in the delivery log
_shuffle = random.Random().shuffle


class RandomSource(Protocol):
    """``random.Random`` as far as the backoff needs it."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class Claimed:
    message_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: str
    attempts: int  # before this one


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    response: str
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_heads(
    connection: Connection, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """The due head message of up to ``limit`` enabled endpoints, moved to ``delivering``.

    Per endpoint, two probes of the (endpoint, state, id) index find its head, so a claim
    costs the number of endpoints, not the number of waiting messages. Endpoints are visited
    in a random order, so with more due endpoints than ``limit`` none waits behind the others.
    """
    endpoints = list(
        connection.execute(select(_E.c.id, _E.c.url, _E.c.secret).where(_E.c.enabled.is_(True)))
    )
    _shuffle(endpoints)
    claimed: list[Claimed] = []
    for endpoint in endpoints:
        if len(claimed) >= limit:
            break
        heads = [
            connection.execute(
                select(func.min(_M.c.id)).where(
                    _M.c.endpoint_id == endpoint.id, _M.c.state == state
                )
            ).scalar()
            for state in OPEN_STATES
        ]
        head = min((h for h in heads if h is not None), default=None)
        if head is None:
            continue
        row = connection.execute(
            update(_M)
            .where(_M.c.id == head, _M.c.state.in_(OPEN_STATES), _M.c.next_attempt_at <= now)
            .values(state="delivering", next_attempt_at=now + lease)
            .returning(_M.c.event_id, _M.c.event_type, _M.c.payload, _M.c.attempts)
        ).first()
        if row is None:
            continue  # not due yet (a retry's time, a POST in flight), or another took it
        claimed.append(
            Claimed(
                head,
                endpoint.id,
                endpoint.url,
                endpoint.secret,
                row.event_id,
                row.event_type,
                row.payload,
                row.attempts,
            )
        )
    return claimed


def post(client: httpx.Client, message: Claimed, at: datetime) -> Outcome:
    """One signed POST; no redirect is followed (a 3xx is a failed attempt)."""
    headers = {
        "content-type": "application/json",
        "user-agent": "Stepmail-Webhooks/1",
        **signed_headers(message.secret, message.event_id, at, message.payload),
    }
    started = time.perf_counter()
    try:
        answer = client.post(
            message.url, content=message.payload.encode(), headers=headers, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        latency = int((time.perf_counter() - started) * 1000)
        return Outcome(None, latency, "", f"{type(exc).__name__}: {exc}"[:500])
    latency = int((time.perf_counter() - started) * 1000)
    error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
    return Outcome(answer.status_code, latency, answer.text[:RESPONSE_KEPT], error)


def refuse(message: Claimed, reason: str) -> Outcome:
    """An attempt that was not made (the destination is refused)."""
    return Outcome(None, 0, "", reason[:500])


def record(
    connection: Connection,
    message: Claimed,
    outcome: Outcome,
    now: datetime,
    *,
    max_attempts: int,
    jitter: RandomSource,
) -> str:
    """Log the attempt and move the message on: ``delivered``, ``pending`` (a retry time) or
    ``failed``. Returns the new state."""
    attempt = message.attempts + 1
    connection.execute(
        insert(webhook_attempts).values(
            message_id=message.message_id,
            attempt=attempt,
            at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response=outcome.response,
            error=outcome.error,
        )
    )
    values: dict[str, object] = {"last_error": outcome.error}
    if outcome.delivered:
        state = "delivered"
        values["delivered_at"] = now
    elif attempt >= max_attempts:
        state = "failed"
    else:
        state = "pending"
        values["next_attempt_at"] = now + backoff(attempt, jitter)
    connection.execute(
        update(_M)
        .where(and_(_M.c.id == message.message_id, _M.c.state == "delivering"))
        .values(state=state, attempts=attempt, **values)
    )
    return state


def backoff(attempt: int, jitter: RandomSource) -> timedelta:
    """5 s after the first failure, doubling, at most an hour; stretched by up to 50%."""
    base: timedelta = min(FIRST_BACKOFF * (2 ** (attempt - 1)), MAX_BACKOFF)
    stretched: timedelta = base * (1 + 0.5 * jitter.random())
    return stretched


def open_messages(connection: Connection, states: Sequence[str] = OPEN_STATES) -> int:
    return int(
        connection.execute(
            select(func.count()).select_from(_M).where(_M.c.state.in_(states))
        ).scalar_one()
    )
