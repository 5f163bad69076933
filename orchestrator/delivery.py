"""Deliver one scheduled send: the only place that decides, renders and calls a transport.

The row's state is the lock. A worker first moves it ``dispatched → sending`` with a
conditional UPDATE; whoever loses that race (a duplicated message, a redelivery) does
nothing. Conditions, tier and suppression are read now, with current data. The transport is
called outside any transaction, then the outcome is written back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from orchestrator.compose import compose_mail
from orchestrator.db.models import SendState
from orchestrator.db.tables import (
    customers,
    delivery_attempts,
    enrollments,
    scheduled_sends,
    subscription_preferences,
    suppressions,
)
from orchestrator.errors import (
    ConditionError,
    DeliveryError,
    PermanentDeliveryError,
    TemplateError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.journeys.compiler import is_missed
from orchestrator.journeys.conditions import evaluate_condition
from orchestrator.journeys.model import Journey, Step
from orchestrator.mail import OutgoingMail
from orchestrator.pacing import hold_back
from orchestrator.reconciliation import hold_stalled, hold_unknown, settle_if_reported, takeable
from orchestrator.rendering.context import CustomerFacts, mail_context
from orchestrator.runtime import Runtime
from orchestrator.transports.base import SendResult, is_reconcilable
from orchestrator.unsubscribe import make_unsubscribe_token, unsubscribe_url
from orchestrator.usage.facts import usage_context

log = logging.getLogger(__name__)

_SENDS = scheduled_sends
_ATTEMPTS = delivery_attempts
_ENROLLMENTS = enrollments
_CUSTOMERS = customers
_SUPPRESSIONS = suppressions
_PREFERENCES = subscription_preferences
RATE_LIMIT_REQUEUE = timedelta(seconds=1)  # when a row that found no send slot is tried again


@dataclass(frozen=True)
class Claim:
    """A row this worker now owns, with what it needs to decide."""

    send_id: int
    enrollment_id: int
    customer_id: int
    journey_id: str
    step_id: str
    due_at: datetime
    attempts: int
    held_until: datetime | None = None  # deferred to this moment (pacing): grace counts from it
    admitted_at: datetime | None = None  # pacing let it go already: a requeue is not lateness


@dataclass(frozen=True)
class Decision:
    """Why a claimed send ends without a mail; ``None`` from :func:`decide` means send it."""

    state: SendState
    reason: str
    end_enrollment: str | None = None


def deliver(runtime: Runtime, send_id: int) -> str:
    """Handle one dispatched row; see :func:`deliver_many`."""
    return deliver_many(runtime, [send_id])[0]


def deliver_many(runtime: Runtime, send_ids: Sequence[int]) -> list[str]:
    """Handle dispatched rows together; returns, per id, the state it ended in (``deferred``
    when it went back to ``pending`` for its send window or the frequency cap, ``ignored``
    when another worker has it or it is done).

    Each row is decided, paced and rendered on its own, but the database work of a batch is
    shared: one transaction claims the rows and reads what the decisions need, one records
    the attempts, one the sends that went out. That is what makes a worker fast.
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
    step = _find_step(journey, claim.step_id)
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
        return _finish_without_sending(runtime, claim, decision, now)
    assert journey is not None and step is not None  # decide() refuses a missing step
    if _deferred(runtime, claim, journey, step, customer, now):
        return "deferred"
    return _render(runtime, claim, journey, step, customer, now)


def decide(
    claim: Claim,
    enrollment_state: str,
    journey: Journey | None,
    step: Step | None,
    customer: CustomerFacts,
    suppression_reason: str | None,
    now: datetime,
    usage: Mapping[str, object] | None = None,
    *,
    opted_out: bool = False,
) -> Decision | None:
    """Every reason not to send, in order of precedence; None when the mail should go.
    ``usage`` is :func:`orchestrator.usage.facts.usage_context`: what conditions ask of usage."""
    if enrollment_state != "active":
        return Decision(SendState.CANCELLED, f"enrollment is {enrollment_state}")
    if journey is None or step is None:
        return Decision(SendState.SKIPPED, "the step is no longer in the journey")
    on_time = claim.held_until or claim.due_at
    if claim.attempts == 1 and claim.admitted_at is None and is_missed(journey, on_time, now):
        late = now - on_time
        return Decision(SendState.MISSED, f"overdue by {late} (grace {journey.grace})")
    if customer.tier not in step.tiers:
        return Decision(SendState.SKIPPED, f"step is not for tier {customer.tier}")
    if suppression_reason is not None:
        return Decision(SendState.SKIPPED, f"address suppressed ({suppression_reason})")
    if opted_out:
        return Decision(SendState.SKIPPED, f"customer opted out of {journey.name!r} ({journey.id})")
    context = condition_context(customer, now, usage)
    try:
        for condition in journey.exit_when:
            if evaluate_condition(condition, context):
                reason = f"exit condition met: {condition}"
                return Decision(SendState.CANCELLED, reason, end_enrollment=reason)
        if step.when is not None and not evaluate_condition(step.when, context):
            return Decision(SendState.SKIPPED, f"condition false: {step.when}")
    except ConditionError as exc:
        return Decision(SendState.FAILED, str(exc))
    return None


def condition_context(
    customer: CustomerFacts, now: datetime, usage: Mapping[str, object] | None = None
) -> dict[str, object]:
    """What step conditions can read (documented in journeys/README.md)."""
    return {
        "customer": customer.as_dict(),
        "tier": customer.tier,
        "plan": customer.plan,
        "attributes": dict(customer.attributes),
        "days_since_signup": max(0, (now - customer.signed_up_at).days),
        **(usage or {}),
    }


@dataclass(frozen=True)
class EnrollmentFacts:
    state: str
    anchor_at: datetime


@dataclass(frozen=True)
class SendFacts:
    """Everything ``decide`` reads from the database, fetched in one round trip."""

    enrollment: EnrollmentFacts
    customer: CustomerFacts
    suppression_reason: str | None
    opted_out: bool


def load_send_facts_many(connection: Connection, claims: Sequence[Claim]) -> dict[int, SendFacts]:
    """For each claim: the enrollment, the customer, any suppression of their address and
    their choice for the journey's topic. One joined SELECT for the whole batch."""
    if not claims:
        return {}
    query = (
        select(
            _SENDS.c.id.label("send_id"),
            _CUSTOMERS,
            _ENROLLMENTS.c.state.label("enrollment_state"),
            _ENROLLMENTS.c.anchor_at.label("enrollment_anchor_at"),
            _SUPPRESSIONS.c.reason.label("suppression_reason"),
            _PREFERENCES.c.subscribed.label("topic_subscribed"),
        )
        .select_from(
            _SENDS.join(_ENROLLMENTS, _ENROLLMENTS.c.id == _SENDS.c.enrollment_id)
            .join(_CUSTOMERS, _CUSTOMERS.c.id == _ENROLLMENTS.c.customer_id)
            .outerjoin(_SUPPRESSIONS, _SUPPRESSIONS.c.email == func.lower(_CUSTOMERS.c.email))
            .outerjoin(
                _PREFERENCES,
                (_PREFERENCES.c.customer_id == _CUSTOMERS.c.id)
                & (_PREFERENCES.c.topic == _SENDS.c.journey_id),
            )
        )
        .where(_SENDS.c.id.in_([claim.send_id for claim in claims]))
    )
    return {
        row.send_id: SendFacts(
            enrollment=EnrollmentFacts(row.enrollment_state, row.enrollment_anchor_at),
            customer=_customer_from_row(row),
            suppression_reason=row.suppression_reason,
            opted_out=row.topic_subscribed is False,
        )
        for row in connection.execute(query)
    }


def customer_facts(connection: Connection, customer_id: int) -> CustomerFacts:
    row = connection.execute(select(_CUSTOMERS).where(_CUSTOMERS.c.id == customer_id)).one()
    return _customer_from_row(row)


def _customer_from_row(row: Any) -> CustomerFacts:
    return CustomerFacts(
        external_id=row.external_id,
        email=row.email,
        name=row.name,
        company=row.company,
        plan=row.plan,
        tier=row.tier,
        locale=row.locale,
        timezone=row.timezone,
        annual_contract_value=row.annual_contract_value,
        currency=row.currency,
        csm_name=row.csm_name,
        csm_email=row.csm_email,
        attributes=dict(row.attributes or {}),
        signed_up_at=row.signed_up_at,
        public_id=row.public_id,
    )


def _claim_many(
    connection: Connection,
    send_ids: Sequence[int],
    now: datetime,
    lease: timedelta,
    idempotent: bool,
    reconcile_window: timedelta | None = None,
) -> list[Claim]:
    """Take the rows for this worker; rows someone else has, or that are done, are left out.

    A ``stalled`` row belonged to a worker that died mid-send: the mail may have gone out.
    It is resent only by an idempotent transport; otherwise it is held for reconciliation
    (``reconciling`` when the transport is reconcilable, else ``unknown``), never resent
    blindly. A row with a provider event reported is not sent again but settled as ``sent``
    (see :mod:`orchestrator.reconciliation`).
    """
    condition = takeable(_SENDS.c.id)
    if idempotent:
        condition = condition | (_SENDS.c.state == SendState.STALLED.value)
    rows = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id.in_(list(send_ids)), condition)
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
        )
    ).all()
    claimed = {row.id for row in rows}
    for send_id in send_ids:  # taken, done, or needing care: none of these is the hot path
        if send_id not in claimed:
            if not idempotent:
                hold_stalled(connection, send_id, now, reconcile_window)
            settle_if_reported(connection, send_id, now)
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
            )
            for row in rows
        ),
        key=lambda claim: order[claim.send_id],
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
    (see :mod:`orchestrator.pacing`)."""
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


def _find_step(journey: Journey | None, step_id: str) -> Step | None:
    if journey is None:
        return None
    try:
        return journey.step(step_id)
    except KeyError:
        return None


def _finish_without_sending(
    runtime: Runtime, claim: Claim, decision: Decision, now: datetime
) -> str:
    with runtime.engine.begin() as connection:
        _set_state(connection, claim.send_id, decision.state, decision.reason, now)
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
        .where(_ENROLLMENTS.c.id == enrollment_id, _ENROLLMENTS.c.state == "active")
        .values(state=state, ended_at=now, end_reason=reason[:500])
    )
    connection.execute(
        update(_SENDS)
        .where(
            _SENDS.c.enrollment_id == enrollment_id,
            _SENDS.c.state.in_([SendState.PENDING.value, SendState.DISPATCHED.value]),
        )
        .values(
            state=SendState.CANCELLED.value,
            reason=f"enrollment {state}: {reason}"[:1000],
            updated_at=now,
        )
    )


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
            _set_state(connection, claim.send_id, SendState.FAILED, f"template: {exc}", now)
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
    """Record an attempt per mail, send them one by one, then record the sent ones together.

    The attempts are written before any request leaves, so a worker that dies mid-batch
    leaves rows whose attempt has no outcome: :mod:`orchestrator.reconciliation` treats
    them as possibly sent.
    """
    if not ready:
        return {}
    with runtime.engine.begin() as connection:
        attempt_ids = (
            connection.execute(
                insert(_ATTEMPTS).returning(_ATTEMPTS.c.id, sort_by_parameter_order=True),
                [
                    {
                        "scheduled_send_id": claim.send_id,
                        "attempt": claim.attempts,
                        "transport": runtime.transport.name,
                        "started_at": now,
                    }
                    for claim, _ in ready
                ],
            )
            .scalars()
            .all()
        )
    outcomes: dict[int, str] = {}
    sent: list[tuple[Claim, int, SendResult, datetime]] = []
    lease = timedelta(seconds=runtime.settings.send_lease)
    leased_until = now + lease
    for index, ((claim, mail), attempt_id) in enumerate(zip(ready, attempt_ids, strict=True)):
        leased_until = _keep_lease(runtime, ready[index:], leased_until, lease)
        if runtime.rate_limiter is not None and not runtime.rate_limiter.acquire():
            outcomes[claim.send_id] = _wait_for_send_slot(runtime, claim, attempt_id)
            continue
        try:
            result = runtime.transport.send(mail)
        except DeliveryError as exc:
            outcomes[claim.send_id] = _record_failure(runtime, claim, attempt_id, exc)
            continue
        sent.append((claim, attempt_id, result, runtime.clock.now()))
        outcomes[claim.send_id] = SendState.SENT.value
    _record_sent(runtime, sent)
    return outcomes


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


def _record_sent(runtime: Runtime, sent: Sequence[tuple[Claim, int, SendResult, datetime]]) -> None:
    if not sent:
        return
    with runtime.engine.begin() as connection:
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == bindparam("b_send_id"))
            .values(
                state=SendState.SENT.value,
                sent_at=bindparam("b_at"),
                reason=None,
                provider_message_id=bindparam("b_message_id"),
                updated_at=bindparam("b_at"),
            ),
            [
                {"b_send_id": c.send_id, "b_at": at, "b_message_id": r.provider_message_id}
                for c, _, r, at in sent
            ],
        )
        connection.execute(
            update(_ATTEMPTS)
            .where(_ATTEMPTS.c.id == bindparam("b_attempt_id"))
            .values(
                outcome="sent",
                provider_message_id=bindparam("b_message_id"),
                finished_at=bindparam("b_at"),
            ),
            [
                {"b_attempt_id": a, "b_at": at, "b_message_id": r.provider_message_id}
                for _, a, r, at in sent
            ],
        )
    log.info("%d sent via %s", len(sent), runtime.transport.name)


def _record_failure(runtime: Runtime, claim: Claim, attempt_id: int, exc: DeliveryError) -> str:
    now = runtime.clock.now()
    error = str(exc)[:2000]
    if isinstance(exc, UnknownDeliveryOutcome):
        return _record_unknown(runtime, claim, attempt_id, error, now)
    if (
        isinstance(exc, TransientDeliveryError)
        and claim.attempts < runtime.settings.max_send_attempts
    ):
        state, outcome, wake = (
            SendState.PENDING,
            "transient",
            now + retry_delay(claim.attempts, exc.retry_after),
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
        _finish_attempt(connection, attempt_id, outcome, error, None, now)
    log.warning("send %d attempt %d %s: %s", claim.send_id, claim.attempts, outcome, error)
    return state.value


def _record_unknown(
    runtime: Runtime, claim: Claim, attempt_id: int, error: str, now: datetime
) -> str:
    """No answer after the request left: settled, reconciling or unknown (see
    :mod:`orchestrator.reconciliation`); never resent here."""
    with runtime.engine.begin() as connection:
        _finish_attempt(connection, attempt_id, "unknown", error, None, now)
        hold = hold_unknown(
            connection,
            claim.send_id,
            reconcilable=is_reconcilable(runtime.transport),
            window=timedelta(seconds=runtime.settings.reconciliation_window),
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


def _wait_for_send_slot(runtime: Runtime, claim: Claim, attempt_id: int) -> str:
    """No send slot under ``STEPMAIL_SEND_RATE_LIMIT`` in time: back to ``pending`` for the
    scheduler to dispatch again in a second. Nothing was sent, so it costs no attempt.

    (The slot is taken after the attempt row is written, so that nothing but the request
    itself stands between the slot and the provider.)"""
    now = runtime.clock.now()
    with runtime.engine.begin() as connection:
        connection.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.id == attempt_id))
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == claim.send_id, _SENDS.c.state == SendState.SENDING.value)
            .values(
                state=SendState.PENDING.value,
                wake_at=now + RATE_LIMIT_REQUEUE,
                attempts=_SENDS.c.attempts - 1,
                reason="waiting for a send slot (STEPMAIL_SEND_RATE_LIMIT)",
                updated_at=now,
            )
        )
    log.info("send %d waits for a send slot", claim.send_id)
    return SendState.PENDING.value


def _window(runtime: Runtime) -> timedelta | None:
    """How long an unknown outcome waits for a provider event; None: the transport has none."""
    if not is_reconcilable(runtime.transport):
        return None
    return timedelta(seconds=runtime.settings.reconciliation_window)


def retry_delay(attempt: int, retry_after: float | None) -> timedelta:
    """Exponential backoff from 30 s, capped at an hour, never sooner than the provider asked."""
    backoff = min(30 * 2 ** (attempt - 1), 3600)
    return timedelta(seconds=max(backoff, retry_after or 0))


def _set_state(
    connection: Connection, send_id: int, state: SendState, reason: str, now: datetime
) -> None:
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id)
        .values(state=state.value, reason=reason[:1000], updated_at=now)
    )


def _finish_attempt(
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
