"""Enrolling customers: from the signed signup hook, one at a time, or a list at once."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.enrollment import store
from orchestrator.enrollment.signature import check_headers, verify
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.enrollment.store import EnrollmentRules
from orchestrator.guards.strict_json import parse_model
from orchestrator.journeys.model import Journey


@dataclass(frozen=True)
class HookRules:
    """How the signup hook is verified: its HMAC key (empty: every request is refused) and how
    old a timestamp may be."""

    secret: str
    tolerance: int  # seconds


@dataclass(frozen=True)
class EnrollSummary:
    processed: int
    created: int


def check_signup_headers(
    timestamp: str | None, signature: str | None, *, hook: HookRules, clock: Clock
) -> None:
    """InvalidSignature for what the headers alone show (no secret, a missing or stale
    timestamp, no ``v1=`` value): the route asks before it reads the body, so an unsigned
    request costs no memory."""
    check_headers(hook.secret, timestamp, signature, clock.now().timestamp(), hook.tolerance)


def enroll_signed_signup(
    engine: Engine,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    hook: HookRules,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
) -> SignupAccepted:
    """One signed signup on its own: read (:func:`read_signed_signup`), then enrolled in one
    transaction. The hook groups signups instead (``services/signup_groups``)."""
    signup = read_signed_signup(body, timestamp, signature, hook=hook, clock=clock)
    return enroll_signup(engine, signup, journeys=journeys, rules=rules, clock=clock)


def read_signed_signup(
    body: bytes, timestamp: str | None, signature: str | None, *, hook: HookRules, clock: Clock
) -> SignupRequest:
    """Verify the signature over the raw body (InvalidSignature), then read the body
    (InvalidRequest naming each field)."""
    verify(
        hook.secret,
        timestamp,
        signature,
        body,
        now=clock.now().timestamp(),
        tolerance=hook.tolerance,
    )
    return parse_model(SignupRequest, body)


def enroll_signup(
    engine: Engine,
    signup: SignupRequest,
    *,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
) -> SignupAccepted:
    """The customer stored once and enrolled in every signup journey, in one transaction."""
    with Session(engine) as session, session.begin():
        return store.enroll_signup(session, signup, journeys, rules, clock.now())


def enroll_many(
    engine: Engine,
    signups: Sequence[SignupRequest],
    *,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
    progress: Callable[[Sequence[SignupRequest]], Iterable[SignupRequest]] = iter,
    batch_size: int = 500,
) -> EnrollSummary:
    """``stepmail enroll``: ``batch_size`` signups a transaction, so a long import never holds
    SQLite's write lock for long; a run cut short is safe to repeat (a customer is found, not
    enrolled twice). ``progress`` wraps the iteration (a progress bar)."""
    now = clock.now()
    created = 0
    rows = iter(progress(signups))
    while True:
        batch = list(itertools.islice(rows, batch_size))
        if not batch:
            break
        with Session(engine) as session, session.begin():
            for signup in batch:
                created += store.enroll_signup(session, signup, journeys, rules, now).created
    return EnrollSummary(len(signups), created)
