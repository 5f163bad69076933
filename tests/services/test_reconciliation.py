"""Exactly-once accounting through SendGrid: an unanswered request is held, settled by the
event webhook without a second send, or resent once after the reconciliation window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import delivery_attempts
from orchestrator.errors import UnknownDeliveryOutcome
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail
from orchestrator.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_events import EventSigner, sendgrid_event
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.support.crash import DiesMidCall, WorkerKilled
from tests.support.delivery import run_due
from tests.support.sendgrid import (
    fake_sendgrid,
    post_events,
    send_row,
    sg_client,
    sg_runtime,
    sg_settings,
    signer,
)
from tests.support.signups import post_signup, signup_payload

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

LEASE = timedelta(seconds=120)


def window(runtime: Runtime) -> timedelta:
    return timedelta(seconds=runtime.settings.reconciliation_window)


def attempts_of(runtime: Runtime, send_id: int) -> list[Any]:
    with runtime.engine.connect() as connection:
        query = select(delivery_attempts).where(delivery_attempts.c.scheduled_send_id == send_id)
        return list(connection.execute(query.order_by(delivery_attempts.c.id)))


def hang_the_welcome(client: TestClient, runtime: Runtime, fake: FakeSendGrid) -> Any:
    """Sign up; SendGrid takes the welcome mail but never answers."""
    fake.script(["hang"])
    post_signup(client, signup_payload())
    assert run_due(runtime) == ["reconciling"]
    return send_row(runtime, "welcome")


def test_a_hang_is_held_for_the_reconciliation_window(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    row = hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)

    assert row.wake_at == clock.now() + window(sg_runtime)
    assert "waiting up to 0:30:00 for a provider event" in row.reason
    [attempt] = attempts_of(sg_runtime, row.id)
    assert attempt.outcome == "unknown"
    assert len(fake_sendgrid.accepted) == 1  # SendGrid did take it

    clock.advance(window(sg_runtime) - timedelta(seconds=1))
    assert run_due(sg_runtime) == []  # nothing before the window ends


def test_the_webhook_settles_a_hang_without_a_second_send(
    sg_client: TestClient,
    sg_runtime: Runtime,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> None:
    hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    [mail] = fake_sendgrid.accepted
    clock.advance(timedelta(minutes=2))
    response = post_events(sg_client, signer, clock, [sendgrid_event(mail, "processed")])
    assert response.status_code == 200

    row = send_row(sg_runtime, "welcome")
    assert row.state == "sent"
    assert row.provider_message_id == mail.message_id
    assert row.reason == "settled by a provider processed event"
    clock.advance(window(sg_runtime) * 2)
    assert run_due(sg_runtime) == []
    assert len(fake_sendgrid.request_times) == 1  # one request, ever


def test_with_no_event_it_is_resent_once_after_the_window(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    row = hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    clock.advance(window(sg_runtime))

    assert run_due(sg_runtime) == ["sent"]
    assert len(fake_sendgrid.accepted) == 2
    assert [a.outcome for a in attempts_of(sg_runtime, row.id)] == ["unknown", "sent"]
    clock.advance(window(sg_runtime) * 2)
    assert run_due(sg_runtime) == []


def test_a_second_unknown_outcome_stays_unknown(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    clock.advance(window(sg_runtime))
    fake_sendgrid.script(["hang"])

    assert run_due(sg_runtime) == ["unknown"]
    clock.advance(window(sg_runtime) * 2)
    assert run_due(sg_runtime) == []
    assert len(fake_sendgrid.request_times) == 2  # the first try and its one resend
    assert send_row(sg_runtime, "welcome").state == "unknown"


def test_the_webhook_also_settles_a_row_already_unknown(
    sg_client: TestClient,
    sg_runtime: Runtime,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> None:
    hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    clock.advance(window(sg_runtime))
    fake_sendgrid.script(["hang"])
    run_due(sg_runtime)
    late = fake_sendgrid.accepted[-1]

    post_events(sg_client, signer, clock, [sendgrid_event(late, "delivered")])
    assert send_row(sg_runtime, "welcome").state == "sent"


def test_an_event_after_the_scheduler_woke_the_row_still_prevents_the_resend(
    sg_client: TestClient,
    sg_runtime: Runtime,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> None:
    row = hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    [mail] = fake_sendgrid.accepted
    clock.advance(window(sg_runtime))
    assert claim_due_sends(sg_runtime.engine, clock.now(), 10, LEASE) == [row.id]
    post_events(sg_client, signer, clock, [sendgrid_event(mail, "delivered")])  # just in time

    assert deliver(sg_runtime.delivery_deps(), row.id) == "ignored"
    settled = send_row(sg_runtime, "welcome")
    assert (settled.state, settled.delivery_status) == ("sent", "delivered")
    assert len(fake_sendgrid.request_times) == 1


def test_a_duplicate_message_does_not_resend_before_the_window(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid
) -> None:
    row = hang_the_welcome(sg_client, sg_runtime, fake_sendgrid)
    late_duplicate = deliver(sg_runtime.delivery_deps(), row.id)  # of the first message
    assert late_duplicate == "ignored"
    assert send_row(sg_runtime, "welcome").state == "reconciling"
    assert len(fake_sendgrid.request_times) == 1


class EventBeforeAnswer:
    """SendGrid processes the mail and reports it before our HTTP call gives up."""

    name = "sendgrid"
    idempotent = False
    reconcilable = True

    def __init__(self, inner: SendGridTransport, report: Any) -> None:
        self.inner, self.report = inner, report

    def send(self, mail: OutgoingMail) -> SendResult:
        result = self.inner.send(mail)
        self.report()
        raise UnknownDeliveryOutcome("read timed out")  # as if the 202 never arrived
        return result  # pragma: no cover

    def close(self) -> None:
        self.inner.close()


def test_an_event_that_beats_the_timeout_settles_the_send_at_once(
    sg_client: TestClient,
    sg_runtime: Runtime,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> None:
    def report() -> None:
        mail = fake_sendgrid.accepted[-1]
        post_events(sg_client, signer, clock, [sendgrid_event(mail, "processed")])

    inner = sg_runtime.transport
    assert isinstance(inner, SendGridTransport)
    sg_runtime.transport = EventBeforeAnswer(inner, report)
    post_signup(sg_client, signup_payload())

    assert run_due(sg_runtime) == ["sent"]
    clock.advance(window(sg_runtime) * 2)
    assert run_due(sg_runtime) == []
    assert len(fake_sendgrid.request_times) == 1


def test_a_worker_lost_mid_send_waits_for_an_event_then_resends_once(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    post_signup(sg_client, signup_payload())
    [send_id] = claim_due_sends(sg_runtime.engine, clock.now(), 10, LEASE)
    transport = sg_runtime.transport
    sg_runtime.transport = DiesMidCall(transport, die_at=1, mail_left=False)
    with pytest.raises(WorkerKilled):  # the worker died as it handed the mail over
        deliver(sg_runtime.delivery_deps(), send_id)
    sg_runtime.transport = transport
    clock.advance(LEASE)

    assert run_due(sg_runtime) == ["ignored"]
    row = send_row(sg_runtime, "welcome")
    assert (row.state, row.wake_at) == ("reconciling", clock.now() + window(sg_runtime))
    clock.advance(window(sg_runtime))
    assert run_due(sg_runtime) == ["sent"]
    assert len(fake_sendgrid.accepted) == 1
