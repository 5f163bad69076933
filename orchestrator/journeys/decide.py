"""Whether a claimed send should go: every reason not to, decided from data already read.

Pure: no database, no clock; the worker and the simulator call the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.customers.facts import CustomerFacts
from orchestrator.errors import ConditionError
from orchestrator.journeys.compiler import is_expired, is_missed
from orchestrator.journeys.conditions import evaluate_condition
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.states import SendState


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
    dispatch: int = 0  # the row's dispatch count when claimed: a higher one means it was taken back


@dataclass(frozen=True)
class Decision:
    """Why a claimed send ends without a mail; ``None`` from :func:`decide` means send it."""

    state: SendState
    reason: str
    end_enrollment: str | None = None
    held_by_task: int | None = None  # HELD: the open CSM task that holds it


@dataclass(frozen=True)
class OpenTask:
    """A CSM task open for the customer: a journey naming its kind holds its mails."""

    id: int
    kind: str


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
    open_tasks: Sequence[OpenTask] = (),
) -> Decision | None:
    """Every reason not to send, in order of precedence; None when the mail should go.
    ``usage`` is :func:`orchestrator.usage.facts.usage_context`: what conditions ask of usage.
    A step held for an open task comes last: exit rules still end the enrollment, and a
    condition that is false skips rather than holds."""
    if enrollment_state == "paused":  # held, not lost: resuming makes the row pending again
        return Decision(SendState.PAUSED, "enrollment is paused")
    if enrollment_state != "active":
        return Decision(SendState.CANCELLED, f"enrollment is {enrollment_state}")
    if journey is None or step is None:
        return Decision(SendState.SKIPPED, "the step is no longer in the journey")
    if is_expired(step, claim.due_at, now):
        late = now - claim.due_at
        return Decision(
            SendState.MISSED,
            f"expired: {late} after its due time (expires after {step.expires_after})",
        )
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
    if customer.relationship.cancelled_at is not None and "cancelled" not in journey.even_if:
        return Decision(SendState.SKIPPED, "the customer cancelled their subscription")
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
    return _held(journey, step, open_tasks)


def _held(journey: Journey, step: Step, open_tasks: Sequence[OpenTask]) -> Decision | None:
    """Held while a task the journey names is open: a human is in charge of the customer.
    Transactional steps (a receipt, a confirmation) are never held."""
    if step.transactional:
        return None
    for task in open_tasks:
        if journey.holds_for(task.kind):
            reason = f"held while CSM task #{task.id} ({task.kind}) is open"
            return Decision(SendState.HELD, reason, held_by_task=task.id)
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
        "stage": customer.stage,
        **(usage or {}),
    }


def find_step(journey: Journey | None, step_id: str) -> Step | None:
    if journey is None:
        return None
    try:
        return journey.step(step_id)
    except KeyError:
        return None
