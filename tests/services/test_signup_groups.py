"""Signed signups run as one group (one transaction) answer and store what the same signups
run one after the other would have, on SQLite and PostgreSQL; a bad one fails alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from orchestrator.db.tables import (
    consent_records,
    customer_stage_history,
    customers,
    enrollments,
    scheduled_sends,
)
from orchestrator.enrollment import many, store
from orchestrator.enrollment.signature import sign
from orchestrator.enrollment.signup import SignupAccepted
from orchestrator.errors import InvalidRequest, InvalidSignature
from orchestrator.runtime import Runtime
from orchestrator.services.signup_groups import Outcome, SignedSignup, enroll_signed_group
from orchestrator.settings import Settings
from tests.support.environment import ROOT, SECRET, make_settings
from tests.support.journeys import standard_with
from tests.support.signups import signup_payload


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The standard journeys with the shipped lifecycle: a new customer starts in a stage."""
    lifecycle = (ROOT / "journeys" / "lifecycle.yaml").read_text("utf-8")
    folder = standard_with(tmp_path / "journeys", {"lifecycle.yaml": lifecycle})
    return make_settings(tmp_path, database_url, journeys_dir=folder)


def signed(runtime: Runtime, payload: Any, secret: str = SECRET) -> SignedSignup:
    body = json.dumps(payload).encode()
    stamp = str(int(runtime.clock.now().timestamp()))
    return SignedSignup(body, stamp, sign(secret, stamp, body))


def run(runtime: Runtime, requests: list[SignedSignup]) -> list[Outcome]:
    return enroll_signed_group(
        runtime.engine,
        requests,
        hook=runtime.hook_rules(),
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def requests(runtime: Runtime, prefix: str) -> list[SignedSignup]:
    """Two customers (the second sorts first), one of them repeated, a wrong signature and a
    body that is not a signup."""
    return [
        signed(runtime, signup_payload(f"{prefix}z")),
        signed(runtime, signup_payload(f"{prefix}bad-signature"), secret="not-the-secret"),
        signed(runtime, signup_payload(f"{prefix}a", tier="high")),
        signed(runtime, signup_payload(f"{prefix}z")),
        signed(runtime, {"external_id": f"{prefix}q", "email": "not an address"}),
    ]


def shape(outcome: Outcome) -> Any:
    if isinstance(outcome, SignupAccepted):
        return ("accepted", outcome.tier, outcome.created, len(outcome.enrollment_ids))
    return type(outcome).__name__


def stored(runtime: Runtime, prefix: str) -> list[Any]:
    c = customers.c
    mine = select(c.id).where(c.external_id.startswith(prefix)).scalar_subquery()
    with runtime.engine.connect() as connection:
        return [
            connection.execute(
                select(func.substr(c.external_id, len(prefix) + 1), c.tier, c.stage)
                .where(c.external_id.startswith(prefix))
                .order_by(c.external_id)
            ).all(),
            connection.execute(
                select(func.count()).where(enrollments.c.customer_id.in_(mine))
            ).scalar(),
            connection.execute(
                select(func.count()).where(scheduled_sends.c.customer_id.in_(mine))
            ).scalar(),
            connection.execute(
                select(consent_records.c.source, consent_records.c.text_version).where(
                    consent_records.c.customer_id.in_(mine)
                )
            ).all(),
            connection.execute(
                select(customer_stage_history.c.stage, customer_stage_history.c.source).where(
                    customer_stage_history.c.customer_id.in_(mine)
                )
            ).all(),
        ]


def test_a_group_answers_and_stores_what_the_signups_alone_would_have(runtime: Runtime) -> None:
    alone = [
        outcome for request in requests(runtime, "alone-") for outcome in run(runtime, [request])
    ]

    grouped = run(runtime, requests(runtime, "group-"))

    assert [shape(o) for o in grouped] == [shape(o) for o in alone]
    assert [shape(o) for o in grouped][1:] == [
        "InvalidSignature",
        ("accepted", "high", True, 1),
        ("accepted", "low", False, 1),
        "InvalidRequest",
    ]
    assert isinstance(grouped[0], SignupAccepted) and isinstance(grouped[3], SignupAccepted)
    assert grouped[0].customer_id == grouped[3].customer_id and grouped[0].created
    assert grouped[0].enrollment_ids == grouped[3].enrollment_ids
    assert stored(runtime, "group-") == stored(runtime, "alone-")
    assert stored(runtime, "group-")[0] == [("a", "high", "onboarding"), ("z", "low", "onboarding")]
    assert isinstance(grouped[1], InvalidSignature) and isinstance(grouped[4], InvalidRequest)


def test_a_signup_whose_enrollment_fails_in_a_group_fails_alone(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The group's transaction fails on its second signup: nothing of it stays, and each
    signup runs again alone, so only the failing one fails."""
    values = store.customer_values

    def failing_for_c(signup: Any, *args: Any) -> Any:
        if signup.external_id == "c":
            raise RuntimeError("the database refused c")
        return values(signup, *args)

    monkeypatch.setattr(store, "customer_values", failing_for_c)  # alone
    monkeypatch.setattr(many, "customer_values", failing_for_c)  # in a group
    group = [signed(runtime, signup_payload(name)) for name in ("b", "c", "d")]

    outcomes = run(runtime, group)

    assert isinstance(outcomes[0], SignupAccepted) and isinstance(outcomes[2], SignupAccepted)
    assert isinstance(outcomes[1], RuntimeError)
    assert outcomes[0].created and outcomes[2].created
    with runtime.engine.connect() as connection:
        names = connection.execute(select(customers.c.external_id)).scalars().all()
    assert sorted(names) == ["b", "d"]
    assert "a group of 3 signups failed (RuntimeError); each runs again alone" in caplog.text
