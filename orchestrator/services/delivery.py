"""Deliver scheduled sends: the only place that claims rows, renders and calls a transport.

Deciding lives in :mod:`orchestrator.journeys.decide`, what it reads in
:mod:`orchestrator.delivery.facts`, pacing in :mod:`orchestrator.delivery.pacing` and recording
outcomes in :mod:`orchestrator.delivery.outcomes`; this module runs them in order and owns
every transaction of the send path.

The row's state is the lock. A worker first moves it ``dispatched → sending`` with a
conditional UPDATE; whoever loses that race (a duplicated message, a redelivery) does
nothing. Conditions, tier and suppression are read now, with current data. The transport is
called outside any transaction, then the outcome is written back.

Transactions: one claims the batch and reads what ``decide`` needs; per row, one for a row
that ends without a mail, one for pacing when it has something to write, one for a template
that fails; per mail, the hand-over (one committed statement, :mod:`~orchestrator.delivery.
hand_over`) and one for a failed transport call; at the end one records the sent rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.clock import Clock
from orchestrator.customers.facts import CustomerFacts
from orchestrator.delivery.claims import claim_many, renew_lease
from orchestrator.delivery.facts import SendFacts, load_send_facts_many
from orchestrator.delivery.hand_over import HandOverLog
from orchestrator.delivery.jitter import RandomSource
from orchestrator.delivery.outcomes import (
    RetryPolicy,
    finish_without_sending,
    reconciliation_window,
    record_failure,
    set_state,
    wait_for_send_slot,
)
from orchestrator.delivery.pacing import apply_pacing, pacing_plan
from orchestrator.delivery.rules import DeliveryRules
from orchestrator.errors import DeliveryError, TemplateError
from orchestrator.journeys.decide import Claim, decide, find_step
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.states import SendState
from orchestrator.recipients.unsubscribe_links import make_unsubscribe_token, unsubscribe_url
from orchestrator.rendering.compose import compose_mail
from orchestrator.rendering.context import SenderIdentity, mail_context
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.transports.base import Transport, is_reconcilable
from orchestrator.transports.mail import OutgoingMail
from orchestrator.transports.rate_limit import SendRateLimiter
from orchestrator.usage.facts import usage_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryDeps:
    """Everything the send path uses, built by the runtime for each batch
    (:meth:`orchestrator.runtime.Runtime.delivery_deps`)."""

    engine: Engine
    journeys: Mapping[str, Journey]
    renderer: MailRenderer
    transport: Transport
    clock: Clock
    jitter: RandomSource
    rules: DeliveryRules
    sender: SenderIdentity
    rate_limiter: SendRateLimiter | None = None  # STEPMAIL_SEND_RATE_LIMIT; None when off

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.rules.max_attempts,
            jitter=self.jitter,
            reconciliation_window=self.rules.reconciliation_window,
            reconcilable=is_reconcilable(self.transport),
        )


def deliver(deps: DeliveryDeps, send_id: int) -> str:
    """Handle one dispatched row; see :func:`deliver_batch`."""
    return deliver_batch(deps, [send_id])[0]


def deliver_batch(deps: DeliveryDeps, send_ids: Sequence[int]) -> list[str]:
    """Handle dispatched rows together; returns, per id, the state it ended in (``deferred``
    when it went back to ``pending`` for its send window or the frequency cap, ``ignored``
    when another worker has it or it is done).

    Each row is decided, paced and rendered on its own, but the database work of a batch is
    shared: one transaction claims the rows and reads what the decisions need, one records
    the sends that went out. That is what makes a worker fast. The one write per mail is its
    hand-over, just before the transport call, so a crash strands nothing
    (:mod:`orchestrator.delivery.hand_over`).
    """
    now = deps.clock.now()
    with deps.engine.begin() as connection:
        claims = claim_many(
            connection,
            send_ids,
            now,
            deps.rules.lease,
            deps.transport.idempotent,
            _window(deps),
        )
        facts = load_send_facts_many(connection, claims)
    outcomes = {send_id: "ignored" for send_id in send_ids}
    ready: list[tuple[Claim, OutgoingMail]] = []
    for claim in claims:
        prepared = _prepare(deps, claim, facts[claim.send_id], now)
        if isinstance(prepared, str):
            outcomes[claim.send_id] = prepared
        else:
            ready.append((claim, prepared))
    outcomes.update(_send_all(deps, ready, now))
    return [outcomes[send_id] for send_id in send_ids]


def _prepare(
    deps: DeliveryDeps, claim: Claim, facts: SendFacts, now: datetime
) -> str | OutgoingMail:
    """The mail to send for a claimed row, or the state the row ended in without one."""
    customer = facts.customer
    journey = deps.journeys.get(claim.journey_id)
    step = find_step(journey, claim.step_id)
    usage = usage_context(deps.engine, claim.customer_id, facts.enrollment.anchor_at, now)
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
        with deps.engine.begin() as connection:
            return finish_without_sending(connection, claim, decision, now)
    assert journey is not None and step is not None  # decide() refuses a missing step
    if _deferred(deps, claim, journey, step, customer, now):
        return "deferred"
    return _render(deps, claim, journey, step, customer, now)


def _deferred(
    deps: DeliveryDeps,
    claim: Claim,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    now: datetime,
) -> bool:
    """Send window, quiet day or frequency cap say "not yet": the row went back to ``pending``
    (see :mod:`orchestrator.delivery.pacing`)."""
    plan = pacing_plan(
        deps.rules.pacing,
        claim.send_id,
        claim.customer_id,
        journey,
        step,
        customer.timezone,
        now,
        was_held=claim.held_until is not None,
    )
    if plan is None:
        return False  # the common case writes nothing
    with deps.engine.begin() as connection:
        return apply_pacing(connection, plan, deps.journeys, now) is not None


def _render(
    deps: DeliveryDeps,
    claim: Claim,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    now: datetime,
) -> str | OutgoingMail:
    """The composed mail, or ``failed`` when the template cannot render for this customer."""
    links = deps.rules.links
    link = unsubscribe_url(
        links.public_base_url, make_unsubscribe_token(links.signing_secret, customer.public_id)
    )
    try:
        rendered = deps.renderer.render(
            step.template,
            customer.tier,
            customer.locale,
            mail_context(
                customer=customer,
                journey=journey,
                step=step,
                sender=deps.sender,
                unsubscribe_url=link,
                now=now,
            ),
        )
    except TemplateError as exc:
        log.error("send %d failed to render: %s", claim.send_id, exc)
        with deps.engine.begin() as connection:
            set_state(connection, claim.send_id, SendState.FAILED, f"template: {exc}", now)
        return SendState.FAILED.value
    return compose_mail(
        rendered=rendered,
        customer=customer,
        journey=journey,
        step=step,
        sender=deps.sender,
        send_id=claim.send_id,
        enrollment_id=claim.enrollment_id,
        unsubscribe_url=link,
        now=now,
        unsubscribe_mailto=links.unsubscribe_mailto,
    )


def _send_all(
    deps: DeliveryDeps, ready: Sequence[tuple[Claim, OutgoingMail]], now: datetime
) -> dict[int, str]:
    """Send the mails one by one, each handed over on the record first, then record the sent
    rows together.

    Killed at any point, the worker leaves at most the one mail it was handing over with an
    unknown outcome: the ones before are recorded as sent on their attempts, the ones after
    have no attempt and are simply sent later (see :mod:`orchestrator.delivery.hand_over`).
    """
    outcomes: dict[int, str] = {}
    hand_overs = HandOverLog(deps.engine, deps.transport.name)
    try:
        _send_each(deps, ready, now, hand_overs, outcomes)
        hand_overs.finish()
    finally:
        hand_overs.close()
    return outcomes


def _send_each(
    deps: DeliveryDeps,
    ready: Sequence[tuple[Claim, OutgoingMail]],
    now: datetime,
    hand_overs: HandOverLog,
    outcomes: dict[int, str],
) -> None:
    """Each mail: keep the lease, take a send slot, hand it over on the record, send it."""
    lease = deps.rules.lease
    leased_until = now + lease
    for index, (claim, mail) in enumerate(ready):
        leased_until = _keep_lease(deps, ready[index:], leased_until)
        if not _send_slot(deps, hand_overs):
            with deps.engine.begin() as connection:
                outcomes[claim.send_id] = wait_for_send_slot(
                    connection, claim, deps.clock.now(), deps.jitter
                )
            continue
        attempt_id = hand_overs.hand_over(claim, deps.clock.now())
        if attempt_id is None:
            log.warning("send %d was taken back before it was handed over", claim.send_id)
            outcomes[claim.send_id] = "ignored"
            continue
        try:
            result = deps.transport.send(mail)
        except DeliveryError as exc:
            hand_overs.flush()
            with deps.engine.begin() as connection:
                outcomes[claim.send_id] = record_failure(
                    connection, claim, attempt_id, exc, deps.clock.now(), deps.retry_policy
                )
            continue
        hand_overs.sent(claim, attempt_id, result, deps.clock.now())
        outcomes[claim.send_id] = SendState.SENT.value


def _send_slot(deps: DeliveryDeps, hand_overs: HandOverLog) -> bool:
    """A slot under ``STEPMAIL_SEND_RATE_LIMIT`` (always, when there is no limit). Before
    waiting for one, the last sent mail goes on the record, so a crash in the wait leaves it
    known as sent. The slot is taken before the hand-over: a mail waiting for one has not left."""
    limiter = deps.rate_limiter
    if limiter is None or limiter.try_acquire():
        return True
    hand_overs.flush()
    return limiter.acquire()


def _keep_lease(
    deps: DeliveryDeps, waiting: Sequence[tuple[Claim, OutgoingMail]], leased_until: datetime
) -> datetime:
    """Renew the lease of the batch's unsent rows once half of it is gone, so a slow provider
    does not make the scheduler take them for a dead worker's rows."""
    now, lease = deps.clock.now(), deps.rules.lease
    if now < leased_until - lease / 2:
        return leased_until
    with deps.engine.begin() as connection:
        renew_lease(connection, [claim.send_id for claim, _ in waiting], now + lease)
    return now + lease


def _window(deps: DeliveryDeps) -> timedelta | None:
    """How long an unknown outcome waits for a provider event; None: the transport has none."""
    if not is_reconcilable(deps.transport):
        return None
    return reconciliation_window(deps.rules.reconciliation_window, deps.jitter)
