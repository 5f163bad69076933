"""The services called directly, as routes and commands call them, on SQLite and PostgreSQL:
each takes exactly what it needs and owns its transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from orchestrator.customers.changes import CustomerPatch
from orchestrator.delivery.unknown_sends import Settlement
from orchestrator.enrollment.signature import sign
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import (
    BadUnsubscribeLink,
    CustomerNotFound,
    InvalidRequest,
    InvalidSignature,
    NotSuppressed,
    SendNotFound,
    TaskNotFound,
    UnknownCustomers,
)
from orchestrator.runtime import Runtime
from orchestrator.services import recipients, signup, suppressions, tasks, unknown_sends
from orchestrator.services.consent import export_consent
from orchestrator.services.customers import update_customer
from orchestrator.services.events import track_events
from orchestrator.services.timeline import timeline_rows
from orchestrator.usage.events import EventIn, EventSubmission
from tests.support.delivery import run_due
from tests.support.environment import SECRET
from tests.support.signups import signup_payload


def enroll(runtime: Runtime, external_id: str = "cust-1") -> None:
    signup.enroll_signup(
        runtime.engine,
        SignupRequest.model_validate(signup_payload(external_id)),
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def signed_signup(runtime: Runtime, body: bytes, signature: str | None = None) -> Any:
    stamp = str(int(runtime.clock.now().timestamp()))
    return signup.enroll_signed_signup(
        runtime.engine,
        body,
        stamp,
        sign(SECRET, stamp, body) if signature is None else signature,
        hook=runtime.hook_rules(),
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def test_the_signed_signup_is_verified_then_read_then_enrolled(runtime: Runtime) -> None:
    body = json.dumps(signup_payload("c1")).encode()
    with pytest.raises(InvalidSignature):
        signed_signup(runtime, body, "v1=00")
    with pytest.raises(InvalidRequest) as bad:
        signed_signup(runtime, b"{}")
    assert ["body", "external_id"] in [error["loc"] for error in bad.value.errors]
    accepted = signed_signup(runtime, body)
    assert accepted.created and accepted.external_id == "c1" and accepted.enrollment_ids


def test_enroll_many_is_all_or_nothing_and_counts_the_new(runtime: Runtime) -> None:
    enroll(runtime, "a")
    signups = [SignupRequest.model_validate(signup_payload(x)) for x in ("a", "b", "c")]
    summary = signup.enroll_many(
        runtime.engine,
        signups,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )
    assert (summary.processed, summary.created) == (3, 2)


def test_suppressions_are_added_listed_and_lifted(runtime: Runtime) -> None:
    added, entry = suppressions.add_suppression(
        runtime.engine, "A@Example.com", reason="manual", source="test", clock=runtime.clock
    )
    assert added and entry.email == "a@example.com"
    again, _ = suppressions.add_suppression(
        runtime.engine, "a@example.com", reason="manual", source="test", clock=runtime.clock
    )
    assert not again
    assert [e.email for e in suppressions.list_suppressions(runtime.engine)] == ["a@example.com"]
    suppressions.remove_suppression(runtime.engine, "a@example.com")
    with pytest.raises(NotSuppressed):
        suppressions.remove_suppression(runtime.engine, "a@example.com")


def test_tasks_and_unknown_sends_name_what_is_missing(runtime: Runtime) -> None:
    assert tasks.list_tasks(runtime.engine) == []
    with pytest.raises(TaskNotFound):
        tasks.close_task(runtime.engine, 42, journeys=runtime.journeys, clock=runtime.clock)
    assert unknown_sends.list_unknown_sends(runtime.engine) == []
    with pytest.raises(SendNotFound):
        unknown_sends.settle_unknown_send(
            runtime.engine, 42, Settlement.SKIP, note="", clock=runtime.clock
        )


def test_events_for_unknown_customers_store_nothing_and_notify_no_one(runtime: Runtime) -> None:
    enroll(runtime)
    told: list[Sequence[int] | None] = []
    events = [EventIn(external_id="cust-1", name="login"), EventIn(external_id="x", name="login")]
    with pytest.raises(UnknownCustomers) as unknown:
        track_events(
            runtime.engine,
            EventSubmission(events, batched=True),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=told.append,
        )
    assert unknown.value.unknown == [(1, "x")] and unknown.value.http_status == 422
    accepted = track_events(
        runtime.engine,
        EventSubmission(events[:1], batched=False),
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=told.append,
    )
    assert (accepted.stored, accepted.duplicates, told) == (1, 0, [])


def test_a_move_into_high_touch_tells_the_csm_after_the_commit(runtime: Runtime) -> None:
    enroll(runtime)
    told: list[Sequence[int] | None] = []
    with pytest.raises(CustomerNotFound):
        update_customer(
            runtime.engine,
            "nobody",
            CustomerPatch(),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=told.append,
        )
    view = update_customer(
        runtime.engine,
        "cust-1",
        CustomerPatch(annual_contract_value=Decimal(5_000_000)),
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=told.append,
    )
    assert view.tier == "high" and not view.tier_explicit
    assert len(told) == 1 and len(told[0] or []) == 1
    assert [task.kind for task in tasks.list_tasks(runtime.engine)] == ["new_high_touch"]


def test_a_link_not_signed_by_us_is_a_bad_link_in_the_readers_language(runtime: Runtime) -> None:
    with pytest.raises(BadUnsubscribeLink) as bad:
        recipients.show_page(
            runtime.engine, "forged", rules=runtime.page_rules(), reader_language="ja"
        )
    assert (bad.value.http_status, bad.value.lang) == (400, "ja")


def test_the_consent_export_and_the_timeline_read_back_what_happened(runtime: Runtime) -> None:
    enroll(runtime)
    text, count = export_consent(runtime.engine, format="json")
    assert count == 1 and json.loads(text)[0]["customer_external_id"] == "cust-1"
    assert run_due(runtime) == ["sent"]
    timeline = timeline_rows(runtime.engine, until=runtime.clock.now())
    assert timeline.timezone == "Asia/Tokyo"
    assert [(row.kind, row.what, row.mail_key) for row in timeline.rows] == [
        ("mail", "onboarding/welcome", "stepmail-1-welcome")
    ]
