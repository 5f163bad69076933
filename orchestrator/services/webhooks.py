"""Outgoing webhooks as use cases: managing endpoints (CLI and ``/v1/webhooks``), reading the
delivery log, replaying a message, and one round of deliveries for the scheduler's loop.

``start_due`` claims the head message of each endpoint in one short transaction and hands
each to a thread that posts it outside any transaction and records the attempt in one of its
own; the loop claims again while those run, so a slow endpoint holds only its own thread and
its own queue. The send path never waits for any of it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, delete, insert, select, update

from orchestrator.clock import Clock
from orchestrator.db.tables import webhook_attempts, webhook_endpoints, webhook_messages
from orchestrator.errors import UnsafeWebhookUrl, WebhookNotFound
from orchestrator.observability.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY
from orchestrator.settings import Settings
from orchestrator.webhooks.delivery import (
    Claimed,
    Outcome,
    RandomSource,
    claim_heads,
    open_messages,
    post,
    record,
    refuse,
)
from orchestrator.webhooks.destinations import check_destination
from orchestrator.webhooks.events import listed, parse_events, stored
from orchestrator.webhooks.outbox import forget_subscribers
from orchestrator.webhooks.signing import new_secret

log = logging.getLogger(__name__)
_E, _M, _A = webhook_endpoints, webhook_messages, webhook_attempts


@dataclass(frozen=True)
class OutgoingWebhookRules:
    """``STEPMAIL_WEBHOOK_*``, as the runtime reads them."""

    allow_private: bool
    timeout: float
    max_attempts: int
    batch_size: int
    retention_days: int = 30

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout * 3 + 5)


def outgoing_webhook_rules(settings: Settings) -> OutgoingWebhookRules:
    """Private destinations are allowed in development (a receiver on localhost) or when
    ``STEPMAIL_WEBHOOK_ALLOW_PRIVATE`` says so."""
    return OutgoingWebhookRules(
        allow_private=settings.webhook_allow_private or settings.is_development,
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        batch_size=settings.webhook_batch_size,
        retention_days=settings.webhook_retention_days,
    )


def add_endpoint(
    engine: Engine,
    url: str,
    events: list[str],
    *,
    rules: OutgoingWebhookRules,
    clock: Clock,
    description: str = "",
) -> dict[str, Any]:
    """A new endpoint; the answer carries its secret (shown this once)."""
    chosen = parse_events(events)
    check_destination(url, allow_private=rules.allow_private)
    secret = new_secret()
    with engine.begin() as connection:
        endpoint_id = connection.execute(
            insert(_E)
            .values(
                url=url,
                secret=secret,
                events=stored(chosen),
                enabled=True,
                description=description[:200],
                created_at=clock.now(),
            )
            .returning(_E.c.id)
        ).scalar_one()
    forget_subscribers()  # used from the next fact on here; elsewhere within QUIET_FOR
    return {**_endpoint_view(endpoint_id, url, chosen, True, description), "secret": secret}


def list_endpoints(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(_E).order_by(_E.c.id)).all()
    return [_endpoint_view(r.id, r.url, listed(r.events), r.enabled, r.description) for r in rows]


def set_endpoint_enabled(engine: Engine, endpoint_id: int, enabled: bool) -> dict[str, Any]:
    with engine.begin() as connection:
        row = connection.execute(
            update(_E).where(_E.c.id == endpoint_id).values(enabled=enabled).returning(_E)
        ).first()
    forget_subscribers()
    if row is None:
        raise WebhookNotFound(f"no webhook endpoint {endpoint_id}")
    return _endpoint_view(row.id, row.url, listed(row.events), row.enabled, row.description)


def list_deliveries(
    engine: Engine, *, endpoint_id: int | None = None, state: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest messages first, each with its attempts (the delivery log)."""
    query = select(_M).order_by(_M.c.id.desc()).limit(max(1, min(limit, 1000)))
    if endpoint_id is not None:
        query = query.where(_M.c.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(_M.c.state == state)
    with engine.connect() as connection:
        messages = connection.execute(query).all()
        ids = [m.id for m in messages]
        attempts = connection.execute(
            select(_A).where(_A.c.message_id.in_(ids)).order_by(_A.c.message_id, _A.c.attempt)
        ).all()
    by_message: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_message.setdefault(a.message_id, []).append(
            {
                "attempt": a.attempt,
                "at": a.at.isoformat(),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "response": a.response,
                "error": a.error,
            }
        )
    return [
        {
            "id": m.id,
            "endpoint_id": m.endpoint_id,
            "event_id": m.event_id,
            "event_type": m.event_type,
            "state": m.state,
            "attempts": m.attempts,
            "created_at": m.created_at.isoformat(),
            "next_attempt_at": m.next_attempt_at.isoformat(),
            "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None,
            "last_error": m.last_error,
            "log": by_message.get(m.id, []),
        }
        for m in messages
    ]


def replay_message(engine: Engine, message_id: int, *, clock: Clock) -> dict[str, Any]:
    """Deliver a message again (same ``webhook-id``, so a receiver can tell), from attempt one;
    it goes before its endpoint's newer messages, keeping their order."""
    with engine.begin() as connection:
        row = connection.execute(
            update(_M)
            .where(_M.c.id == message_id, _M.c.state != "delivering")
            .values(state="pending", attempts=0, next_attempt_at=clock.now(), last_error=None)
            .returning(_M.c.id, _M.c.event_type, _M.c.endpoint_id)
        ).first()
        if row is None:
            exists = connection.execute(select(_M.c.id).where(_M.c.id == message_id)).first()
    if row is None:
        if exists is None:
            raise WebhookNotFound(f"no webhook message {message_id}")
        return {"id": message_id, "state": "delivering", "replayed": False}
    return {"id": row.id, "event_type": row.event_type, "state": "pending", "replayed": True}


def deliver_due(
    engine: Engine,
    client: httpx.Client,
    *,
    rules: OutgoingWebhookRules,
    clock: Clock,
    jitter: RandomSource,
    pool: ThreadPoolExecutor,
) -> int:
    """One round, waited for: claim the due heads, post them in parallel, each attempt
    recorded as it ends. Returns how many were attempted (tests and ``stepmail run``'s loop
    use :func:`start_due` to keep endpoints independent)."""
    started = start_due(
        engine,
        client,
        rules=rules,
        clock=clock,
        jitter=jitter,
        pool=pool,
        limit=rules.batch_size,
    )
    for future in started:
        future.result()
    return len(started)


def start_due(
    engine: Engine,
    client: httpx.Client,
    *,
    rules: OutgoingWebhookRules,
    clock: Clock,
    jitter: RandomSource,
    pool: ThreadPoolExecutor,
    limit: int,
) -> list[Future[str]]:
    """Claim up to ``limit`` due heads (endpoints with a POST in flight have none due: their
    head is ``delivering``) and hand each to ``pool``, which posts it and records the attempt
    in a transaction of its own. Returns at once; a slow endpoint holds only its thread."""
    if limit <= 0:
        return []
    with engine.begin() as connection:
        claimed = claim_heads(connection, clock.now(), min(limit, rules.batch_size), rules.lease)
    return [
        pool.submit(_deliver_one, engine, client, message, rules, clock, jitter)
        for message in claimed
    ]


def _deliver_one(
    engine: Engine,
    client: httpx.Client,
    message: Claimed,
    rules: OutgoingWebhookRules,
    clock: Clock,
    jitter: RandomSource,
) -> str:
    outcome = _attempt(client, message, rules, clock)
    with engine.begin() as connection:
        state = record(
            connection,
            message,
            outcome,
            clock.now(),
            max_attempts=rules.max_attempts,
            jitter=jitter,
        )
    WEBHOOK_DELIVERIES.labels(message.event_type, state).inc()
    log.info(
        "webhook message %d (%s) to endpoint %d: %s (%s, attempt %d)",
        message.message_id,
        message.event_type,
        message.endpoint_id,
        state,
        outcome.status_code or outcome.error,
        message.attempts + 1,
    )
    return state


def prune_delivered(engine: Engine, before: datetime, *, include_failed: bool = False) -> int:
    """Forget delivered messages (and failed ones, when asked) created before ``before``, with
    their attempts; how many went. Waiting messages are never pruned."""
    states = ("delivered", "failed") if include_failed else ("delivered",)
    with engine.begin() as connection:
        old = select(_M.c.id).where(_M.c.state.in_(states), _M.c.created_at < before)
        connection.execute(delete(_A).where(_A.c.message_id.in_(old)))
        gone = connection.execute(
            delete(_M).where(_M.c.state.in_(states), _M.c.created_at < before)
        ).rowcount
    return int(gone)


def pending_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return open_messages(connection)


def _attempt(
    client: httpx.Client, message: Claimed, rules: OutgoingWebhookRules, clock: Clock
) -> Outcome:
    try:
        check_destination(message.url, allow_private=rules.allow_private)
    except UnsafeWebhookUrl as exc:
        return refuse(message, str(exc))
    outcome = post(client, message, clock.now())
    WEBHOOK_LATENCY.observe(outcome.latency_ms / 1000)
    return outcome


def _endpoint_view(
    endpoint_id: int, url: str, events: Any, enabled: bool, description: str
) -> dict[str, Any]:
    return {
        "id": endpoint_id,
        "url": url,
        "events": list(events),
        "enabled": enabled,
        "description": description,
    }
