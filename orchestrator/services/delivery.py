"""Deliver scheduled sends: the only place that claims rows, renders and calls a transport.

Deciding lives in :mod:`orchestrator.journeys.decide`, what it reads in
:mod:`orchestrator.delivery.facts`, and recording outcomes in :mod:`orchestrator.delivery.outcomes`.

The row's state is the lock. A worker first moves it ``dispatched → sending`` with a
conditional UPDATE; whoever loses that race (a duplicated message, a redelivery) does
nothing. Conditions, tier and suppression are read now, with current data. The transport is
called outside any transaction, then the outcome is written back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, update

from orchestrator.customers.facts import CustomerFacts
from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.facts import SendFacts, load_send_facts_many
from orchestrator.delivery.hand_over import HandOverLog, recover_stalled
from orchestrator.delivery.outcomes import (
    finish_without_sending,
    reconciliation_window,
    record_failure,
    set_state,
    wait_for_send_slot,
)
from orchestrator.delivery.pacing import hold_back
from orchestrator.delivery.reconciliation import settle_if_reported, takeable
from orchestrator.errors import DeliveryError, TemplateError
from orchestrator.journeys.decide import Claim, decide, find_step
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.states import SendState
from orchestrator.recipients.unsubscribe_links import make_unsubscribe_token, unsubscribe_url
from orchestrator.rendering.compose import compose_mail
from orchestrator.rendering.context import mail_context
from orchestrator.runtime import Runtime
from orchestrator.transports.base import is_reconcilable
from orchestrator.transports.mail import OutgoingMail
from orchestrator.usage.facts import usage_context

log = logging.getLogger(__name__)

_SENDS = scheduled_sends


def deliver(runtime: Runtime, send_id: int) -> str:
    """Handle one dispatched row; see :func:`deliver_many`."""
    return deliver_many(runtime, [send_id])[0]


def deliver_many(runtime: Runtime, send_ids: Sequence[int]) -> list[str]:
    """Handle dispatched rows together; returns, per id, the state it ended in (``deferred``
    when it went back to ``pending`` for its send window or the frequency cap, ``ignored``
    when another worker has it or it is done).

    Each row is decided, paced and rendered on its own, but the database work of a batch is
    shared: one transaction claims the rows and reads what the decisions need, one records
    the sends that went out. That is what makes a worker fast. The one write per mail is its
    hand-over, just before the transport call, so a crash strands nothing
    (:mod:`orchestrator.delivery.hand_over`).
    """
    now = runtime.clock.now()
    lease = timedelta(seconds=runtime.settings.send_lease)
    with runtime.engine.begin() as connection:
        claims = _claim_many(
            connection, send_ids, now, lease, runtime.transport.idempotent, _window(runtime)
        )
        facts = load_send_facts_many(connection, claims)
    outcomes = {send_id: "ignored" for send_id in send_ids}
    ready: list[tuple[Claim, OutgoingMail]] = []
    for claim in claims:
        prepared = _prepare(runtime, claim, facts[claim.send_id], now)
        if isinstance(prepared, str):
            outcomes[claim.send_id] = prepared
        else:
            ready.append((claim, prepared))
    outcomes.update(_send_all(runtime, ready, now))
    return [outcomes[send_id] for send_id in send_ids]


def _prepare(runtime: Runtime, claim: Claim, facts: SendFacts, now: datetime) -> str | OutgoingMail:
    """The mail to send for a claimed row, or the state the row ended in without one."""
    customer = facts.customer
    journey = runtime.journeys.get(claim.journey_id)
    step = find_step(journey, claim.step_id)
    usage = usage_context(runtime.engine, claim.customer_id, facts.enrollment.anchor_at, now)
    decision = decide(
        claim,
        facts.enrollment.state,
        journey,
        step,
        customer,
        facts.suppression_reason,
        now,
        usage,
        opted_out=facts.opted_out,
    )
    if decision is not None:
        return finish_without_sending(runtime, claim, decision, now)
    assert journey is not None and step is not None  # decide() refuses a missing step
    if _deferred(runtime, claim, journey, step, customer, now):
        return "deferred"
    return _render(runtime, claim, journey, step, customer, now)


def _claim_many(
    connection: Connection,
    send_ids: Sequence[int],
    now: datetime,
    lease: timedelta,
    idempotent: bool,
    reconcile_window: timedelta | None = None,
) -> list[Claim]:
    """Take the rows for this worker; rows someone else has, or that are done, are left out.

    A ``stalled`` row belonged to a worker that died after handing its mail over: the mail may have
    gone out. :func:`orchestrator.delivery.hand_over.recover_stalled` settles it as ``sent`` when
    that was recorded, gives it back to be claimed here when the transport is idempotent, and
    otherwise holds it for reconciliation (``reconciling`` when the transport is reconcilable, else
    ``unknown``), never resent blindly. A row with a provider event reported is not sent again but
    settled as ``sent`` (see :mod:`orchestrator.delivery.reconciliation`).
    """
    rows = _take(connection, send_ids, now, lease)
    claimed = {row.id for row in rows}
    redo = []
    for send_id in send_ids:  # taken, done, or needing care: none of these is the hot path
        if send_id in claimed:
            continue
        if recover_stalled(
            connection, send_id, now, idempotent=idempotent, window=reconcile_window
        ):
            redo.append(send_id)
        settle_if_reported(connection, send_id, now)
    if redo:
        rows += _take(connection, redo, now, lease)
    order = {send_id: i for i, send_id in enumerate(send_ids)}
    return sorted(
        (
            Claim(
                row.id,
                row.enrollment_id,
                row.customer_id,
                row.journey_id,
                row.step_id,
                row.due_at,
                row.attempts,
                held_until=row.held_until,
                admitted_at=row.admitted_at,
                dispatch=row.dispatches,
            )
            for row in rows
        ),
        key=lambda claim: order[claim.send_id],
    )


def _take(
    connection: Connection, send_ids: Sequence[int], now: datetime, lease: timedelta
) -> list[Row[Any]]:
    """``dispatched → sending`` for the rows still waiting for a worker (one UPDATE)."""
    return list(
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id.in_(list(send_ids)), takeable(_SENDS.c.id))
            .values(
                state=SendState.SENDING.value,
                wake_at=now + lease,
                attempts=_SENDS.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                _SENDS.c.id,
                _SENDS.c.enrollment_id,
                _SENDS.c.customer_id,
                _SENDS.c.journey_id,
                _SENDS.c.step_id,
                _SENDS.c.due_at,
                _SENDS.c.attempts,
                _SENDS.c.held_until,
                _SENDS.c.admitted_at,
                _SENDS.c.dispatches,
            )
        ).all()
    )


def _deferred(
    runtime: Runtime,
    claim: Claim,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    now: datetime,
) -> bool:
    """Send window, quiet day or frequency cap say "not yet": the row went back to ``pending``
    (see :mod:`orchestrator.delivery.pacing`)."""
    deferral = hold_back(
        runtime,
        claim.send_id,
        claim.customer_id,
        journey,
        step,
        customer.timezone,
        now,
        was_held=claim.held_until is not None,
    )
    return deferral is not None


def _render(
    runtime: Runtime,
    claim: Claim,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    now: datetime,
) -> str | OutgoingMail:
    """The composed mail, or ``failed`` when the template cannot render for this customer."""
    settings = runtime.settings
    link = unsubscribe_url(
        settings.public_base_url,
        make_unsubscribe_token(settings.signing_secret(), customer.public_id),
    )
    try:
        rendered = runtime.renderer.render(
            step.template,
            customer.tier,
            customer.locale,
            mail_context(
                customer=customer,
                journey=journey,
                step=step,
                sender=runtime.sender,
                unsubscribe_url=link,
                now=now,
            ),
        )
    except TemplateError as exc:
        log.error("send %d failed to render: %s", claim.send_id, exc)
        with runtime.engine.begin() as connection:
            set_state(connection, claim.send_id, SendState.FAILED, f"template: {exc}", now)
        return SendState.FAILED.value
    return compose_mail(
        rendered=rendered,
        customer=customer,
        journey=journey,
        step=step,
        sender=runtime.sender,
        send_id=claim.send_id,
        enrollment_id=claim.enrollment_id,
        unsubscribe_url=link,
        now=now,
        unsubscribe_mailto=settings.unsubscribe_mailto,
    )


def _send_all(
    runtime: Runtime, ready: Sequence[tuple[Claim, OutgoingMail]], now: datetime
) -> dict[int, str]:
    """Send the mails one by one, each handed over on the record first, then record the sent
    rows together.

    Killed at any point, the worker leaves at most the one mail it was handing over with an
    unknown outcome: the ones before are recorded as sent on their attempts, the ones after
    have no attempt and are simply sent later (see :mod:`orchestrator.delivery.hand_over`).
    """
    outcomes: dict[int, str] = {}
    hand_overs = HandOverLog(runtime.engine, runtime.transport.name)
    lease = timedelta(seconds=runtime.settings.send_lease)
    leased_until = now + lease
    for index, (claim, mail) in enumerate(ready):
        leased_until = _keep_lease(runtime, ready[index:], leased_until, lease)
        if not _send_slot(runtime, hand_overs):
            outcomes[claim.send_id] = wait_for_send_slot(runtime, claim)
            continue
        attempt_id = hand_overs.hand_over(claim, runtime.clock.now())
        if attempt_id is None:
            log.warning("send %d was taken back before it was handed over", claim.send_id)
            outcomes[claim.send_id] = "ignored"
            continue
        try:
            result = runtime.transport.send(mail)
        except DeliveryError as exc:
            hand_overs.flush()
            outcomes[claim.send_id] = record_failure(runtime, claim, attempt_id, exc)
            continue
        hand_overs.sent(claim, attempt_id, result, runtime.clock.now())
        outcomes[claim.send_id] = SendState.SENT.value
    hand_overs.finish()
    return outcomes


def _send_slot(runtime: Runtime, hand_overs: HandOverLog) -> bool:
    """A slot under ``STEPMAIL_SEND_RATE_LIMIT`` (always, when there is no limit). Before
    waiting for one, the last sent mail goes on the record, so a crash in the wait leaves it
    known as sent. The slot is taken before the hand-over: a mail waiting for one has not left."""
    limiter = runtime.rate_limiter
    if limiter is None or limiter.try_acquire():
        return True
    hand_overs.flush()
    return limiter.acquire()


def _keep_lease(
    runtime: Runtime,
    waiting: Sequence[tuple[Claim, OutgoingMail]],
    leased_until: datetime,
    lease: timedelta,
) -> datetime:
    """Renew the lease of the batch's unsent rows once half of it is gone, so a slow provider
    does not make the scheduler take them for a dead worker's rows."""
    now = runtime.clock.now()
    if now < leased_until - lease / 2:
        return leased_until
    with runtime.engine.begin() as connection:
        connection.execute(
            update(_SENDS)
            .where(
                _SENDS.c.id.in_([claim.send_id for claim, _ in waiting]),
                _SENDS.c.state == SendState.SENDING.value,
            )
            .values(wake_at=now + lease)
        )
    return now + lease


def _window(runtime: Runtime) -> timedelta | None:
    """How long an unknown outcome waits for a provider event; None: the transport has none."""
    if not is_reconcilable(runtime.transport):
        return None
    return reconciliation_window(runtime)
