"""``decide()``: every reason a claimed send ends without a mail, in order of precedence, from
data and an explicit ``now`` only (no database, no clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from orchestrator.customers.facts import CustomerFacts
from orchestrator.customers.relationship import Relationship
from orchestrator.journeys.decide import (
    Claim,
    Decision,
    OpenTask,
    condition_context,
    decide,
    find_step,
)
from orchestrator.journeys.model import Journey
from orchestrator.journeys.states import SendState

DUE = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
ON_TIME = DUE + timedelta(minutes=5)
LATE = DUE + timedelta(hours=25)  # past the default grace of 24 hours

CUSTOMER = CustomerFacts(
    external_id="c1",
    email="c1@customer.example",
    name="Jane",
    company="Acme",
    plan="business",
    tier="low",
    locale="en",
    timezone="Asia/Tokyo",
    annual_contract_value=Decimal(360_000),
    currency="JPY",
    csm_name=None,
    csm_email=None,
    attributes={"seats": 12},
    signed_up_at=DUE,
)


def journey(**fields: Any) -> Journey:
    steps = fields.pop("steps", [{"id": "welcome", "after": "0d", "template": "t/welcome"}])
    return Journey.model_validate(
        {"id": "onboarding", "name": "Onboarding", "steps": steps, **fields}
    )


def claim(**fields: Any) -> Claim:
    values: dict[str, Any] = {
        "send_id": 1,
        "enrollment_id": 2,
        "customer_id": 3,
        "journey_id": "onboarding",
        "step_id": "welcome",
        "due_at": DUE,
        "attempts": 1,
    }
    return Claim(**(values | fields))


def run(
    journey_: Journey | None = None,
    *,
    now: datetime = ON_TIME,
    enrollment: str = "active",
    customer: CustomerFacts = CUSTOMER,
    suppression: str | None = None,
    opted_out: bool = False,
    usage: dict[str, object] | None = None,
    **claim_fields: Any,
) -> Decision | None:
    the_journey = journey() if journey_ is None else journey_
    the_claim = claim(**claim_fields)
    step = find_step(the_journey, the_claim.step_id)
    return decide(
        the_claim,
        enrollment,
        the_journey,
        step,
        customer,
        suppression,
        now,
        usage,
        opted_out=opted_out,
    )


def test_all_clear_means_send() -> None:
    assert run() is None


def test_an_ended_enrollment_cancels() -> None:
    decision = run(enrollment="converted")
    assert decision == Decision(SendState.CANCELLED, "enrollment is converted")


def test_a_paused_enrollment_holds_the_step_whatever_else_holds() -> None:
    held = Decision(SendState.PAUSED, "enrollment is paused")
    assert run(enrollment="paused") == held
    assert run(enrollment="paused", now=LATE, suppression="bounce") == held  # not missed, kept


def test_a_missing_journey_or_step_skips() -> None:
    gone = decide(claim(), "active", None, None, CUSTOMER, None, ON_TIME)
    assert gone is not None and gone.state is SendState.SKIPPED
    renamed = run(step_id="renamed")
    assert renamed is not None and renamed.state is SendState.SKIPPED
    assert "no longer in the journey" in renamed.reason


def test_the_first_attempt_past_the_grace_is_missed() -> None:
    decision = run(now=LATE)
    assert decision is not None and decision.state is SendState.MISSED
    assert decision.reason == "overdue by 1 day, 1:00:00 (grace 1 day, 0:00:00)"


def test_a_retry_past_the_grace_is_not_missed() -> None:
    assert run(now=LATE, attempts=2) is None


def test_the_grace_counts_from_the_deferral() -> None:
    held = DUE + timedelta(hours=20)
    assert run(now=LATE, held_until=held) is None
    missed = run(now=held + timedelta(hours=25), held_until=held)
    assert missed is not None and missed.state is SendState.MISSED


def test_an_admitted_send_is_never_missed() -> None:
    assert run(now=LATE, admitted_at=DUE) is None


def test_a_step_not_for_the_tier_skips() -> None:
    only_high = journey(
        steps=[{"id": "welcome", "after": "0d", "template": "t", "tiers": ["high"]}]
    )
    decision = run(only_high)
    assert decision == Decision(SendState.SKIPPED, "step is not for tier low")


def test_a_suppressed_address_skips_with_the_reason() -> None:
    decision = run(suppression="bounce")
    assert decision == Decision(SendState.SKIPPED, "address suppressed (bounce)")


def test_an_opted_out_topic_skips() -> None:
    decision = run(opted_out=True)
    assert decision is not None and decision.state is SendState.SKIPPED
    assert "opted out of 'Onboarding' (onboarding)" in decision.reason


def test_an_exit_condition_cancels_and_ends_the_enrollment() -> None:
    decision = run(journey(exit_when=["attributes.seats > 10"]))
    assert decision is not None and decision.state is SendState.CANCELLED
    assert decision.end_enrollment == decision.reason == "exit condition met: attributes.seats > 10"


def test_a_false_step_condition_skips() -> None:
    step = {"id": "welcome", "after": "0d", "template": "t", "when": "plan == 'enterprise'"}
    decision = run(journey(steps=[step]))
    assert decision == Decision(SendState.SKIPPED, "condition false: plan == 'enterprise'")


def test_a_condition_that_fails_fails_the_send() -> None:
    step = {"id": "welcome", "after": "0d", "template": "t", "when": "usage.count('x') > 1"}
    decision = run(journey(steps=[step]))
    assert decision is not None and decision.state is SendState.FAILED
    assert "usage" in decision.reason


def test_conditions_read_usage_when_given() -> None:
    step = {"id": "welcome", "after": "0d", "template": "t", "when": "logins >= 3"}
    assert run(journey(steps=[step]), usage={"logins": 3}) is None
    assert run(journey(steps=[step]), usage={"logins": 2}) is not None


@pytest.mark.parametrize(
    ("stronger", "weaker", "expected"),
    [
        ({"enrollment": "exited"}, {"now": LATE}, SendState.CANCELLED),
        ({"now": LATE}, {"customer": replace(CUSTOMER, tier="tech")}, SendState.MISSED),
        ({"suppression": "bounce"}, {"opted_out": True}, SendState.SKIPPED),
    ],
)
def test_precedence(stronger: dict[str, Any], weaker: dict[str, Any], expected: SendState) -> None:
    only_low = journey(steps=[{"id": "welcome", "after": "0d", "template": "t", "tiers": ["low"]}])
    decision = run(only_low, **weaker, **stronger)
    assert decision is not None and decision.state is expected
    if "suppression" in stronger:
        assert "suppressed" in decision.reason


def test_an_exit_condition_beats_a_false_step_condition() -> None:
    step = {"id": "welcome", "after": "0d", "template": "t", "when": "false"}
    decision = run(journey(steps=[step], exit_when=["true"]))
    assert decision is not None and decision.state is SendState.CANCELLED


def test_the_condition_context() -> None:
    context = condition_context(CUSTOMER, DUE + timedelta(days=3, hours=5), {"usage": "u"})
    assert set(context) == {
        "customer",
        "tier",
        "plan",
        "attributes",
        "days_since_signup",
        "stage",
        "usage",
    }
    assert context["days_since_signup"] == 3
    assert context["tier"] == "low" and context["plan"] == "business"
    assert context["attributes"] == {"seats": 12}
    assert context["customer"]["email"] == "c1@customer.example"  # type: ignore[index]


def test_days_since_signup_never_goes_below_zero() -> None:
    before_signup = DUE - timedelta(days=2)
    assert condition_context(CUSTOMER, before_signup)["days_since_signup"] == 0


def test_an_open_task_the_journey_names_holds_the_send_and_names_the_task() -> None:
    the_journey = journey()  # hold_while_task defaults to at_risk: the band's task
    tasks = (OpenTask(7, "nps_detractor"), OpenTask(9, "health_at_risk"))
    decision = decide(
        claim(),
        "active",
        the_journey,
        the_journey.step("welcome"),
        CUSTOMER,
        None,
        ON_TIME,
        open_tasks=tasks,
    )
    assert decision == Decision(
        SendState.HELD, "held while CSM task #9 (health_at_risk) is open", held_by_task=9
    )


def test_a_transactional_step_or_a_journey_naming_no_task_is_not_held() -> None:
    tasks = (OpenTask(9, "health_at_risk"),)
    unheld = journey(hold_while_task=[])
    receipt = journey(
        steps=[{"id": "welcome", "after": "0d", "template": "t/w", "transactional": True}]
    )
    for the_journey in (unheld, receipt):
        step = the_journey.step("welcome")
        assert (
            decide(claim(), "active", the_journey, step, CUSTOMER, None, ON_TIME, open_tasks=tasks)
            is None
        )


def test_a_cancelled_customer_gets_no_mail_unless_the_journey_says_even_if_cancelled() -> None:
    cancelled = replace(CUSTOMER, relationship=Relationship(cancelled_at=DUE))
    decision = run(customer=cancelled)
    assert decision == Decision(SendState.SKIPPED, "the customer cancelled their subscription")
    assert run(journey(even_if=["cancelled"]), customer=cancelled) is None
    converted = replace(CUSTOMER, relationship=Relationship(converted_at=DUE))
    assert run(customer=converted) is None  # converting stops entries, not a running journey


def test_the_relationship_says_which_situation_is_in_the_way() -> None:
    everything = Relationship(cancelled_at=DUE, exited_at=DUE, converted_at=DUE)
    assert everything.in_the_way((), ON_TIME) == "cancelled"
    assert everything.in_the_way(("cancelled",), ON_TIME) == "exited"
    assert everything.in_the_way(("cancelled", "exited"), ON_TIME) == "converted"
    assert everything.in_the_way(("cancelled", "exited"), DUE + timedelta(days=31)) is None


def test_a_step_past_its_own_expiry_is_missed_even_within_the_grace() -> None:
    steps = [{"id": "welcome", "after": "0d", "template": "t/welcome", "expires_after": "1h"}]
    expiring = journey(steps=steps)
    assert run(expiring, now=DUE + timedelta(minutes=30)) is None
    decision = run(expiring, now=DUE + timedelta(hours=2))
    assert decision is not None and decision.state is SendState.MISSED
    assert decision.reason.startswith("expired:")
