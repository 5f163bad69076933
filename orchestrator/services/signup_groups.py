"""Signed signups that arrive together, enrolled in one transaction.

The signup hook's cost is mostly per transaction and per statement, not per customer, so the
API hands the signups that wait while a group runs to :func:`enroll_signed_group` as the next
group (see ``orchestrator.api.coalescer``). Each signup is verified and read on its own (a bad
one gets its own 401 or 422), then the good ones are enrolled together with a few statements
for all of them (``orchestrator.enrollment.many``). Nothing weakens: when a signup's answer is
sent, its customer and enrollments are committed. If the group's transaction fails, nothing of
it is stored and each signup runs again alone, so a failing one gets the error it would have
had alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.enrollment.many import enroll_signups
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.enrollment.store import EnrollmentRules
from orchestrator.journeys.model import Journey
from orchestrator.services.signup import HookRules, enroll_signup, read_signed_signup

log = logging.getLogger(__name__)

# What a signup of the group gets: its answer, or the exception it would have raised alone.
Outcome = SignupAccepted | Exception


@dataclass(frozen=True)
class SignedSignup:
    """A signup hook request as received: the raw body and its signature headers."""

    body: bytes
    timestamp: str | None
    signature: str | None


def enroll_signed_group(
    engine: Engine,
    requests: Sequence[SignedSignup],
    *,
    hook: HookRules,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
) -> list[Outcome]:
    """Each request's answer or error, in order."""
    read = [_verified(request, hook, clock) for request in requests]
    signups = {n: r for n, r in enumerate(read) if isinstance(r, SignupRequest)}
    if len(signups) > 1:
        try:
            done = _together(engine, signups, journeys, rules, clock)
            return [done[n] if isinstance(r, SignupRequest) else r for n, r in enumerate(read)]
        except Exception as exc:  # each signup alone below gets its own error
            log.warning(
                "a group of %d signups failed (%s); each runs again alone",
                len(signups),
                type(exc).__name__,
            )
    return [
        _alone(engine, r, journeys, rules, clock) if isinstance(r, SignupRequest) else r
        for r in read
    ]


def _verified(request: SignedSignup, hook: HookRules, clock: Clock) -> SignupRequest | Exception:
    try:
        return read_signed_signup(
            request.body, request.timestamp, request.signature, hook=hook, clock=clock
        )
    except Exception as exc:  # its own 401 or 422
        return exc


def _together(
    engine: Engine,
    signups: Mapping[int, SignupRequest],
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
) -> dict[int, SignupAccepted]:
    """Each signup's answer by its position."""
    with Session(engine) as session, session.begin():
        answers = enroll_signups(session, list(signups.values()), journeys, rules, clock.now())
    return dict(zip(signups, answers, strict=True))


def _alone(
    engine: Engine,
    signup: SignupRequest,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    clock: Clock,
) -> Outcome:
    try:
        return enroll_signup(engine, signup, journeys=journeys, rules=rules, clock=clock)
    except Exception as exc:  # its own error, raised again by its handler
        return exc
