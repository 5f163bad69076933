"""Sends whose outcome stayed unknown wait for a person, who settles each one: sent (never
sent again), resend (sent once more), or skip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import delivery_attempts
from orchestrator.delivery.unknown_sends import Settlement, list_unknown, settle_unknown
from orchestrator.errors import StepmailError, UnknownDeliveryOutcome
from orchestrator.runtime import Runtime
from tests.support.delivery import run_due
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport, welcome_row


@pytest.fixture
def transport(client: TestClient, runtime: Runtime) -> ScriptedTransport:
    """The welcome mail's send ended unknown (an SMTP connection lost after DATA, say)."""
    scripted = ScriptedTransport(UnknownDeliveryOutcome("connection lost after DATA"))
    runtime.transport = scripted
    post_signup(client, signup_payload("lost"))
    assert run_due(runtime) == ["unknown"]
    return scripted


def settle(runtime: Runtime, settlement: Settlement, note: str = "") -> None:
    send_id = welcome_row(runtime).id
    with runtime.engine.begin() as connection:
        settle_unknown(connection, send_id, settlement, note, runtime.clock.now())


def test_unknown_sends_are_listed_for_a_person(
    transport: ScriptedTransport, runtime: Runtime
) -> None:
    with runtime.engine.connect() as connection:
        (waiting,) = list_unknown(connection)
    assert (waiting.email, waiting.journey_id, waiting.step_id, waiting.attempts) == (
        "lost@customer.example",
        "onboarding",
        "welcome",
        1,
    )
    assert "connection lost after DATA" in (waiting.reason or "")


def test_settled_as_sent_it_is_never_sent_again(
    transport: ScriptedTransport, runtime: Runtime, clock: FrozenClock
) -> None:
    with runtime.engine.connect() as connection:
        started = connection.execute(select(delivery_attempts.c.started_at)).scalar_one()
    clock.advance(timedelta(minutes=30))  # a person looks later
    settle(runtime, Settlement.SENT, "in the provider's activity log")
    clock.advance(timedelta(hours=1))
    assert run_due(runtime) == []
    row = welcome_row(runtime)
    assert (row.state, row.sent_at) == ("sent", started)
    assert row.reason == "settled by hand as sent: in the provider's activity log"
    assert transport.sent == []


def test_settled_as_resend_it_is_sent_once_at_the_next_tick(
    transport: ScriptedTransport, runtime: Runtime
) -> None:
    settle(runtime, Settlement.RESEND)
    assert run_due(runtime) == ["sent"]
    assert run_due(runtime) == []
    assert len(transport.sent) == 1 and welcome_row(runtime).attempts == 2


def test_only_an_unknown_send_can_be_settled(
    transport: ScriptedTransport, runtime: Runtime
) -> None:
    settle(runtime, Settlement.SKIP)
    assert welcome_row(runtime).state == "skipped"
    with pytest.raises(StepmailError, match="is skipped, not unknown"):
        settle(runtime, Settlement.RESEND)
    with runtime.engine.begin() as connection, pytest.raises(StepmailError, match="no send 999"):
        settle_unknown(connection, 999, Settlement.SENT, "", runtime.clock.now())
