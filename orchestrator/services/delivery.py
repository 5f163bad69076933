"""Deliver scheduled sends: the only place that claims rows, renders and calls a transport.

Deciding lives in :mod:`orchestrator.journeys.decide`, what it reads in
:mod:`orchestrator.delivery.facts`, pacing in :mod:`orchestrator.delivery.pacing` and recording
outcomes in :mod:`orchestrator.delivery.outcomes`; this module runs them in order and owns
every transaction of the send path.

The row's state is the lock. A worker first moves it ``dispatched → sending`` with a
conditional UPDATE; whoever loses that race (a duplicated message, a redelivery) does
nothing. Conditions, tier and suppression are read now, with current data. The transport is
called outside any transaction, then the outcome is written back.

Transactions: one claims the batch and reads what ``decide`` needs; when the batch's
conditions ask about usage, one statement answers their literal questions for every row
(:func:`orchestrator.usage.prefetch.prefetch_each`); one for the rows that end without a mail;
one for the batch's pacing when it has something to write (a deferral, an admission under the
frequency cap); per row, one for a template that fails; per window of mails sent together
(one mail, or up to the transport's ``in_flight``), the hand-over (one committed statement,
:mod:`~orchestrator.delivery.hand_over`); per failed transport call, one; at the end one
records the sent rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from orchestrator.archive.store import ArchiveEntry, MailArchiver, write_archive
from orchestrator.clock import Clock
from orchestrator.customers.facts import CustomerFacts
from orchestrator.delivery.claims import claim_many, renew_lease
from orchestrator.delivery.facts import SendFacts, load_send_facts_many
from orchestrator.delivery.hand_over import HandOverLog
from orchestrator.delivery.jitter import RandomSource
from orchestrator.delivery.outcomes import (
    RetryPolicy,
    finish_without_sending,
    hand_back,
    reconciliation_window,
    record_failure,
    set_state,
    wait_for_send_slot,
)
from orchestrator.delivery.pacing import PacingPlan, apply_pacing, pacing_plan
from orchestrator.delivery.rules import DeliveryRules, LinkRules
from orchestrator.delivery.send_log import report_batch
from orchestrator.delivery.stopping import never_stopping
from orchestrator.errors import DeliveryError, TemplateError, UnknownDeliveryOutcome
from orchestrator.journeys.decide import Claim, Decision, decide, find_step
from orchestrator.journeys.durations import format_duration
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.programs import Programs, SessionsAt
from orchestrator.journeys.states import SendState
from orchestrator.observability.metrics import RENDER_LATENCY, TRANSPORT_LATENCY
from orchestrator.recipients.survey_links import (
    make_program_token,
    make_survey_token,
    program_url,
    survey_page_url,
)
from orchestrator.recipients.unsubscribe_links import make_unsubscribe_token, unsubscribe_url
from orchestrator.rendering.compose import compose_mail
from orchestrator.rendering.context import SenderIdentity, mail_context
from orchestrator.rendering.renderer import DraftMail, MailRenderer, RenderedMail
from orchestrator.tracking.links import ClickLinks, click_key
from orchestrator.transports.base import Transport, in_flight, is_reconcilable, send_each
from orchestrator.transports.rate_limit import SendRateLimiter
from orchestrator.usage.facts import usage_context
from orchestrator.usage.prefetch import Key, prefetch_each, usage_questions

log = logging.getLogger(__name__)


class FollowedVersions(Protocol):
    """The journey version an enrollment follows, and the renderer of its templates
    (:class:`orchestrator.services.journey_catalog.JourneyCatalog`)."""

    def journey(self, journey_id: str, version_id: int | None) -> Journey | None: ...

    def renderer(self, journey_id: str, version_id: int | None) -> MailRenderer | None: ...


@dataclass(frozen=True)
class DeliveryDeps:
    """Everything the send path uses, built by the runtime for each batch
    (:meth:`orchestrator.runtime.Runtime.delivery_deps`). With ``versions`` each row is
    decided and rendered with the journey version its enrollment follows; without, with
    ``journeys`` and the folder's ``renderer`` (an installation without versions)."""

    engine: Engine
    journeys: Mapping[str, Journey]
    renderer: MailRenderer
    transport: Transport
    clock: Clock
    jitter: RandomSource
    rules: DeliveryRules
    sender: SenderIdentity
    rate_limiter: SendRateLimiter | None = None  # STEPMAIL_SEND_RATE_LIMIT; None when off
    programs: Programs | None = None  # journeys/programs.yaml: the sessions mails list
    archiver: MailArchiver | None = None  # None: sent mails are not archived
    versions: FollowedVersions | None = None
    # Asked between two windows: once true, the rest of the batch is handed back unsent
    # (orchestrator.delivery.stopping); the worker process's stop.
    stopping: Callable[[], bool] = never_stopping

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

    Each row is decided, paced and rendered on its own (the batch's HTML first, then its text
    parts, then composed: :class:`DraftMail`), but the database work of a batch is shared:
    one transaction claims the rows and reads what the decisions need, one writes their
    pacing, one records the sends that went out. That is what makes a worker fast. The one
    write per window of mails is its hand-over, just before the transport calls, so a crash
    strands nothing (:mod:`orchestrator.delivery.hand_over`).
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
    routes = {claim.send_id: _route(deps, claim, facts[claim.send_id]) for claim in claims}
    answers = _usage_answers(deps, claims, routes, now)
    outcomes = {send_id: "ignored" for send_id in send_ids}
    going: list[tuple[Claim, _Route, CustomerFacts]] = []
    ended: list[tuple[Claim, Decision]] = []
    for claim in claims:
        route, known = routes[claim.send_id], answers.get(claim.customer_id)
        decision = _decide(deps, claim, facts[claim.send_id], route, known, now)
        if decision is not None:
            ended.append((claim, decision))
        else:
            going.append((claim, route, facts[claim.send_id].customer))
    plans, missed = _pacing_plans(deps, going, now)
    outcomes.update(_end_without_sending(deps, [*ended, *missed], now))
    paced = _apply_pacing(deps, plans, now)
    outcomes.update(paced)
    not_now = {*paced, *(claim.send_id for claim, _ in missed)}
    drafted: list[_Drafted] = []
    sessions = None if deps.programs is None else SessionsAt(deps.programs, now)
    for claim, route, customer in going:
        if claim.send_id in not_now:  # deferred, or missed
            continue
        assert route.journey is not None and route.step is not None  # decide() saw to it
        draft = _draft(
            deps, route.renderer, claim, route.journey, route.step, customer, sessions, now
        )
        if isinstance(draft, str):
            outcomes[claim.send_id] = draft
        else:
            drafted.append(draft)
    ready = _compose_all(deps, drafted, now, outcomes)
    provider_ids: dict[int, str | None] = {}
    outcomes.update(_send_all(deps, ready, now, provider_ids))
    tiers = {claim.send_id: facts[claim.send_id].customer.tier for claim in claims}
    report_batch(claims, outcomes, tiers, provider_ids, deps.transport.name)
    return [outcomes[send_id] for send_id in send_ids]


@dataclass(frozen=True)
class _Route:
    """The journey (version) a claimed row follows, its step, and their templates' renderer;
    the journey or step is None when it is gone."""

    journey: Journey | None
    step: Step | None
    renderer: MailRenderer

    def conditions(self) -> tuple[str, ...]:
        """The conditions deciding the row reads: the journey's exits, then the step's own."""
        if self.journey is None or self.step is None:
            return ()
        step_when = (self.step.when,) if self.step.when is not None else ()
        return (*self.journey.exit_when, *step_when)


def _route(deps: DeliveryDeps, claim: Claim, facts: SendFacts) -> _Route:
    version_id = facts.enrollment.version_id
    if deps.versions is not None:
        journey = deps.versions.journey(claim.journey_id, version_id)
        renderer = deps.versions.renderer(claim.journey_id, version_id) or deps.renderer
    else:
        journey, renderer = deps.journeys.get(claim.journey_id), deps.renderer
    return _Route(journey, find_step(journey, claim.step_id), renderer)


def _usage_answers(
    deps: DeliveryDeps, claims: Sequence[Claim], routes: Mapping[int, _Route], now: datetime
) -> dict[int, dict[Key, object]]:
    """The usage the batch's conditions ask about, answered for all its customers at once
    (a condition's ``usage.seen('x')`` was a query of its own per mail: ~0.8 ms of a
    worker's CPU, bench/README "Session 10"). Questions it cannot answer ahead are still
    asked lazily, per mail. Nothing is read when no condition asks about usage."""
    conditions = [(claim.customer_id, routes[claim.send_id].conditions()) for claim in claims]
    if not any(usage_questions(sources) for _, sources in conditions):
        return {}
    with deps.engine.connect() as connection:
        return prefetch_each(connection, conditions, now)


def _decide(
    deps: DeliveryDeps,
    claim: Claim,
    facts: SendFacts,
    route: _Route,
    answers: Mapping[Key, object] | None,
    now: datetime,
) -> Decision | None:
    """None when the claimed row's mail should go; else why it ends without one (nothing is
    written here). ``answers``: usage questions of its conditions answered already
    (:func:`_usage_answers`)."""
    usage = usage_context(
        deps.engine,
        claim.customer_id,
        facts.enrollment.anchor_at,
        now,
        health=facts.health,
        answers=answers,
    )
    return decide(
        claim,
        facts.enrollment.state,
        route.journey,
        route.step,
        facts.customer,
        facts.suppression_reason,
        now,
        usage,
        opted_out=facts.opted_out,
        open_tasks=facts.open_tasks,
    )


def _end_without_sending(
    deps: DeliveryDeps, ended: Sequence[tuple[Claim, Decision]], now: datetime
) -> dict[int, str]:
    """Write what ``decide`` said for the rows that go without a mail (skipped, cancelled,
    held ...), all in one transaction; send id → the state each ended in."""
    if not ended:
        return {}
    with deps.engine.begin() as connection:
        return finish_without_sending(connection, ended, now)


def _pacing_plans(
    deps: DeliveryDeps, going: Sequence[tuple[Claim, _Route, CustomerFacts]], now: datetime
) -> tuple[list[PacingPlan], list[tuple[Claim, Decision]]]:
    """What send windows, quiet days and the frequency cap have to write for the rows about
    to go (see :mod:`orchestrator.delivery.pacing`; the common case: nothing), and the rows
    that are ``missed`` now because their window opens only after the step's
    ``expires_after``. Pure: nothing is read or written here."""
    plans: list[PacingPlan] = []
    missed: list[tuple[Claim, Decision]] = []
    for claim, route, customer in going:
        journey, step = route.journey, route.step
        assert journey is not None and step is not None  # decide() refuses a missing step
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
            continue
        expiry = step.expires_after
        wake_at = plan.deferral.wake_at if plan.deferral is not None else None
        if expiry is not None and wake_at is not None and wake_at - claim.due_at > expiry:
            assert plan.deferral is not None
            late = format_duration(expiry)
            why = f"expired: {plan.deferral.reason}, later than its expiry ({late} after due)"
            missed.append((claim, Decision(SendState.MISSED, why)))
        else:
            plans.append(plan)
    return plans, missed


def _apply_pacing(deps: DeliveryDeps, plans: Sequence[PacingPlan], now: datetime) -> dict[int, str]:
    """Write the batch's pacing plans in one transaction (the frequency cap counted under one
    lock of their customers); send id → ``deferred`` for each row that went back to
    ``pending``. The rows missing from the answer may go now."""
    if not plans:
        return {}
    with deps.engine.begin() as connection:
        deferrals = apply_pacing(connection, plans, deps.journeys, now)
    return {
        plan.send_id: "deferred"
        for plan, deferral in zip(plans, deferrals, strict=True)
        if deferral is not None
    }


@dataclass(frozen=True, slots=True)
class _Drafted:
    """A row's mail rendered but for its text part (:class:`DraftMail`), with what composing
    it needs and how long rendering it took so far."""

    claim: Claim
    journey: Journey
    step: Step
    customer: CustomerFacts
    unsubscribe_link: str
    draft: DraftMail
    seconds: float


def _draft(
    deps: DeliveryDeps,
    renderer: MailRenderer,
    claim: Claim,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    sessions: SessionsAt | None,
    now: datetime,
) -> str | _Drafted:
    """The row's mail drafted, or ``failed`` when the template cannot render for this
    customer."""
    links = deps.rules.links
    link = unsubscribe_url(
        links.public_base_url, make_unsubscribe_token(links.signing_secret, customer.public_id)
    )
    started = time.perf_counter()
    try:
        draft = renderer.draft(
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
                survey_url=_survey_url(links, journey, step, customer),
                sessions=_sessions(deps, sessions, customer),
            ),
            links=_click_links(deps, journey, claim.send_id),
        )
    except TemplateError as exc:
        return _failed_to_render(deps, claim, exc, now)
    seconds = time.perf_counter() - started
    return _Drafted(claim, journey, step, customer, link, draft, seconds)


def _failed_to_render(deps: DeliveryDeps, claim: Claim, exc: TemplateError, now: datetime) -> str:
    """The row ``failed``, with why its mail cannot be rendered."""
    log.error("send %d failed to render: %s", claim.send_id, exc)
    with deps.engine.begin() as connection:
        set_state(connection, claim.send_id, SendState.FAILED, f"template: {exc}", now)
    return SendState.FAILED.value


def _compose_all(
    deps: DeliveryDeps, drafted: Sequence[_Drafted], now: datetime, outcomes: dict[int, str]
) -> list[tuple[Claim, ArchiveEntry]]:
    """The batch's drafts finished (their text parts made one after the other, see
    :class:`DraftMail`), then composed into the mails to send, with what the archive keeps.
    A draft whose text part cannot be made (a lone surrogate in its HTML) is ``failed``."""
    finished: list[tuple[_Drafted, RenderedMail, float]] = []
    for drafted_mail in drafted:
        started = time.perf_counter()
        try:
            rendered = drafted_mail.draft.finish()
        except TemplateError as exc:
            outcomes[drafted_mail.claim.send_id] = _failed_to_render(
                deps, drafted_mail.claim, exc, now
            )
            continue
        finished.append((drafted_mail, rendered, time.perf_counter() - started))
    ready: list[tuple[Claim, ArchiveEntry]] = []
    for drafted_mail, rendered, text_seconds in finished:
        started = time.perf_counter()
        claim, customer = drafted_mail.claim, drafted_mail.customer
        mail = compose_mail(
            rendered=rendered,
            customer=customer,
            journey=drafted_mail.journey,
            step=drafted_mail.step,
            sender=deps.sender,
            send_id=claim.send_id,
            enrollment_id=claim.enrollment_id,
            row_step_id=claim.step_id,
            unsubscribe_url=drafted_mail.unsubscribe_link,
            now=now,
            unsubscribe_mailto=deps.rules.links.unsubscribe_mailto,
        )
        spent = drafted_mail.seconds + text_seconds + time.perf_counter() - started
        RENDER_LATENCY.observe(spent)  # the mail's own share of the three steps
        ready.append((claim, ArchiveEntry(claim.send_id, rendered.template_name, mail)))
    return ready


def _click_links(deps: DeliveryDeps, journey: Journey, send_id: int) -> ClickLinks | None:
    """The mail's signed redirect links, unless clicks are not tracked (globally or for the
    journey)."""
    links = deps.rules.links
    if not (links.click_tracking and journey.track_clicks):
        return None
    return ClickLinks(click_key(links.signing_secret), links.public_base_url, send_id)


def _survey_url(
    links: LinkRules, journey: Journey, step: Step, customer: CustomerFacts
) -> str | None:
    """The customer's signed page for the step's survey (None: the step has none)."""
    survey = journey.survey_id(step)
    if survey is None:
        return None
    token = make_survey_token(links.signing_secret, customer.public_id, survey)
    return survey_page_url(links.public_base_url, token)


def _sessions(
    deps: DeliveryDeps, sessions: SessionsAt | None, customer: CustomerFacts
) -> list[dict[str, object]]:
    """The next sessions for the customer's tier and language, each with its signed link."""
    if sessions is None:
        return []
    links = deps.rules.links
    return [
        {
            **view,
            "url": program_url(
                links.public_base_url,
                make_program_token(links.signing_secret, customer.public_id, program.id),
            ),
        }
        for program, view in sessions.shown(customer.tier, customer.language, customer.timezone)
    ]


def _send_all(
    deps: DeliveryDeps,
    ready: Sequence[tuple[Claim, ArchiveEntry]],
    now: datetime,
    provider_ids: dict[int, str | None],
) -> dict[int, str]:
    """Send the mails window by window, each window handed over on the record first, then
    record the sent rows together.

    Killed at any point, the worker leaves at most the window it was sending with unknown
    outcomes (one mail, unless the transport posts several at once: ``in_flight``): the
    mails before are recorded as sent on their attempts, the ones after have no attempt and
    are simply sent later (see :mod:`orchestrator.delivery.hand_over`).
    """
    outcomes: dict[int, str] = {}
    hand_overs = HandOverLog(deps.engine, deps.transport.name, deps.archiver)
    try:
        _send_each(deps, ready, now, hand_overs, outcomes, provider_ids)
        hand_overs.finish()
    finally:
        hand_overs.close()
    return outcomes


def _send_each(
    deps: DeliveryDeps,
    ready: Sequence[tuple[Claim, ArchiveEntry]],
    now: datetime,
    hand_overs: HandOverLog,
    outcomes: dict[int, str],
    provider_ids: dict[int, str | None],
) -> None:
    """Each window: keep the lease, take its mails' send slots, hand them over on the
    record, send them. A worker that is stopping hands back the mails it has not started
    (:mod:`orchestrator.delivery.stopping`)."""
    leased_until = now + deps.rules.lease
    size = in_flight(deps.transport)
    position = 0
    while position < len(ready):
        if deps.stopping():
            with deps.engine.begin() as connection:
                rest = [claim for claim, _ in ready[position:]]
                outcomes.update(hand_back(connection, rest, deps.clock.now()))
            return
        leased_until = _keep_lease(deps, ready[position:], leased_until)
        window, position = _next_window(deps, ready, position, size, hand_overs, outcomes)
        if window:
            _send_window(deps, window, hand_overs, outcomes, provider_ids)


def _next_window(
    deps: DeliveryDeps,
    ready: Sequence[tuple[Claim, ArchiveEntry]],
    start: int,
    size: int,
    hand_overs: HandOverLog,
    outcomes: dict[int, str],
) -> tuple[list[tuple[Claim, ArchiveEntry]], int]:
    """The mails from ``start`` that go together, each with its send slot taken, and where
    the next window starts. At most ``size``; no customer twice (their mails leave in
    order); a window that has mails ends rather than wait for a slot. A mail whose slot
    never came goes back to ``pending`` (:func:`wait_for_send_slot`)."""
    window: list[tuple[Claim, ArchiveEntry]] = []
    customers: set[int] = set()
    position = start
    while position < len(ready) and len(window) < size:
        claim, entry = ready[position]
        if claim.customer_id in customers:
            break
        slot = _send_slot(deps, hand_overs, wait=not window)
        if slot is None:
            break
        position += 1
        if not slot:
            with deps.engine.begin() as connection:
                outcomes[claim.send_id] = wait_for_send_slot(
                    connection, claim, deps.clock.now(), deps.jitter
                )
            continue
        window.append((claim, entry))
        customers.add(claim.customer_id)
    return window, position


def _send_window(
    deps: DeliveryDeps,
    window: Sequence[tuple[Claim, ArchiveEntry]],
    hand_overs: HandOverLog,
    outcomes: dict[int, str],
    provider_ids: dict[int, str | None],
) -> None:
    """Hand the window's mails over in one committed statement, send those still this
    worker's, and note what came of each (a failure is written at once)."""
    attempts = hand_overs.hand_over([claim for claim, _ in window], deps.clock.now())
    going: list[tuple[Claim, ArchiveEntry, int]] = []
    for claim, entry in window:
        attempt_id = attempts.get(claim.send_id)
        if attempt_id is None:
            log.warning("send %d was taken back before it was handed over", claim.send_id)
            outcomes[claim.send_id] = "ignored"
        else:
            going.append((claim, entry, attempt_id))
    if not going:
        return
    started = time.perf_counter()
    results = send_each(deps.transport, [entry.mail for _, entry, _ in going])
    seconds = time.perf_counter() - started  # each mail of a window waited for all of it
    took = TRANSPORT_LATENCY.labels(deps.transport.name, "ok")  # looked up once a window
    for (claim, entry, attempt_id), result in zip(going, results, strict=True):
        if isinstance(result, DeliveryError):
            TRANSPORT_LATENCY.labels(deps.transport.name, "error").observe(seconds)
            outcomes[claim.send_id] = _failed(deps, hand_overs, claim, entry, attempt_id, result)
            continue
        took.observe(seconds)
        hand_overs.sent(claim, attempt_id, result, deps.clock.now(), entry)
        provider_ids[claim.send_id] = result.provider_message_id
        outcomes[claim.send_id] = SendState.SENT.value


def _failed(
    deps: DeliveryDeps,
    hand_overs: HandOverLog,
    claim: Claim,
    entry: ArchiveEntry,
    attempt_id: int,
    error: DeliveryError,
) -> str:
    """Write a failed transport call at once (the sent mails before it first); the state
    its row went to."""
    hand_overs.flush()
    failed_at = deps.clock.now()
    archived = hand_overs.archive_rows([entry], failed_at) if _may_have_left(error) else []
    with deps.engine.begin() as connection:
        outcome = record_failure(connection, claim, attempt_id, error, failed_at, deps.retry_policy)
        write_archive(connection, archived)
    return outcome


def _send_slot(deps: DeliveryDeps, hand_overs: HandOverLog, *, wait: bool) -> bool | None:
    """A slot under ``STEPMAIL_SEND_RATE_LIMIT`` (always, when there is no limit): True when
    taken, False when waiting for one ran out, None when there is none now and ``wait`` is
    False. Before waiting, the sent mails go on the record, so a crash in the wait leaves
    them known as sent. The slot is taken before the hand-over: a mail waiting for one has
    not left."""
    limiter = deps.rate_limiter
    if limiter is None or limiter.try_acquire():
        return True
    if not wait:
        return None
    hand_overs.flush()
    return limiter.acquire()


def _may_have_left(exc: DeliveryError) -> bool:
    """An unknown outcome may have reached the customer: it is archived like a sent mail."""
    return isinstance(exc, UnknownDeliveryOutcome)


def _keep_lease(
    deps: DeliveryDeps, waiting: Sequence[tuple[Claim, ArchiveEntry]], leased_until: datetime
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
