"""The send path through SendGrid under a hostile provider: 429 and 5xx storms give every mail
exactly once; a refusal is final and its text is kept; the send-rate limit defers, not drops."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, delivery_attempts, scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.transports.factory import make_transport
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.rate_limit import SendRateLimiter, _PruningStubBackend
from orchestrator.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_events import EventSigner
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.support.delivery import run_due
from tests.support.sendgrid import (
    fake_sendgrid,
    send_row,
    sendgrid_settings,
    sg_client,
    sg_runtime,
    sg_settings,
    signer,
)
from tests.support.signups import post_signup, signup_payload

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

CUSTOMERS = 12


def recipients(fake: FakeSendGrid) -> Counter[str]:
    return Counter(m.body["personalizations"][0]["to"][0]["email"] for m in fake.accepted)


def states(runtime: Runtime) -> Counter[str]:
    """The states of the day-0 (welcome) rows."""
    query = select(scheduled_sends.c.state).where(scheduled_sends.c.step_id == "welcome")
    with runtime.engine.connect() as connection:
        return Counter(connection.execute(query).scalars())


def drain(runtime: Runtime, clock: FrozenClock, rounds: int = 40) -> None:
    """Tick, then jump past the longest backoff, until no welcome mail is left to try."""
    for _ in range(rounds):
        run_due(runtime)
        if not states(runtime)["pending"]:
            return
        clock.advance(timedelta(minutes=5))
    raise AssertionError(f"still not drained: {states(runtime)}")


def test_a_storm_of_429_and_5xx_still_sends_every_mail_once(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    storm = random.Random(4)
    budget: dict[str, int] = {}  # 1 to 6 failures per mail, below MAX_SEND_ATTEMPTS

    def answer(body: dict[str, Any]) -> str:
        email = body["personalizations"][0]["to"][0]["email"]
        left = budget.setdefault(email, storm.randint(1, 6))
        budget[email] = left - 1
        return storm.choice(["429", "500", "502", "503"]) if left > 0 else "ok"

    fake_sendgrid.script(answer)
    for n in range(CUSTOMERS):
        post_signup(sg_client, signup_payload(f"c{n}"))

    drain(sg_runtime, clock)

    assert states(sg_runtime)["sent"] == CUSTOMERS
    assert set(recipients(fake_sendgrid).values()) == {1}
    assert len(recipients(fake_sendgrid)) == CUSTOMERS
    assert len(fake_sendgrid.request_times) > 2 * CUSTOMERS  # it really stormed
    assert fake_sendgrid.invalid == []


def test_retries_wait_at_least_what_a_429_asks(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    fake_sendgrid.script(["429"])
    post_signup(sg_client, signup_payload())
    assert run_due(sg_runtime) == ["pending"]
    row = send_row(sg_runtime, "welcome")
    assert row.wake_at >= clock.now() + timedelta(seconds=30)
    assert "too many requests" in row.reason


def test_a_400_is_not_retried_and_sendgrids_text_is_kept(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    fake_sendgrid.script(["400"])
    post_signup(sg_client, signup_payload())

    assert run_due(sg_runtime) == ["failed"]
    clock.advance(timedelta(hours=2))
    assert run_due(sg_runtime) == []
    row = send_row(sg_runtime, "welcome")
    assert row.state == "failed"
    assert "HTTP 400" in row.reason
    assert "The from email does not contain a valid address." in row.reason
    with sg_runtime.engine.connect() as connection:
        [attempt] = connection.execute(select(delivery_attempts)).all()
    assert attempt.outcome == "permanent"
    assert "The from email does not contain a valid address." in attempt.error
    assert len(fake_sendgrid.request_times) == 1


def test_a_row_that_finds_no_send_slot_waits_in_the_database(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    # One slot an hour: the two sends cannot fall into two buckets however slow the machine
    # (at 0.5/s, a 2 s bucket, both were sent once in a full run at load average 6).
    limiter = SendRateLimiter(_PruningStubBackend(), 1 / 3600, "test", max_wait=0.0)  # type: ignore[no-untyped-call]
    sg_runtime.rate_limiter = limiter
    post_signup(sg_client, signup_payload("a"))
    post_signup(sg_client, signup_payload("b"))

    assert sorted(run_due(sg_runtime)) == ["pending", "sent"]
    waiting: Any = next(
        r for r in (send_row_for(sg_runtime, e) for e in ("a", "b")) if r.state == "pending"
    )
    assert waiting.reason == "waiting for a send slot (STEPMAIL_SEND_RATE_LIMIT)"
    assert waiting.attempts == 0  # waiting for a slot is not a failed try
    assert waiting.wake_at == clock.now() + timedelta(seconds=1)
    assert len(fake_sendgrid.accepted) == 1


def send_row_for(runtime: Runtime, external_id: str) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(
            select(scheduled_sends)
            .join(customers, customers.c.id == scheduled_sends.c.customer_id)
            .where(customers.c.external_id == external_id, scheduled_sends.c.step_id == "welcome")
        ).one()


def test_every_payload_names_its_send_for_the_webhook(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid
) -> None:
    post_signup(sg_client, signup_payload())
    assert run_due(sg_runtime) == ["sent"]
    [mail] = fake_sendgrid.accepted
    row = send_row(sg_runtime, "welcome")

    assert mail.body["custom_args"] == {
        "stepmail_send_id": str(row.id),
        "stepmail_enrollment_id": str(row.enrollment_id),
        "stepmail_journey": "onboarding",
        "stepmail_step": "welcome",
        "stepmail_tier": "low",
    }
    assert mail.body["categories"] == ["onboarding", "onboarding/welcome", "tier-low"]
    assert row.provider_message_id == mail.message_id  # SendGrid's X-Message-Id
    assert "mail_settings" not in mail.body


def test_sandbox_mode_follows_the_setting(
    tmp_path: Path, database_url: str, fake_sendgrid: FakeSendGrid, signer: EventSigner
) -> None:
    settings = sendgrid_settings(
        tmp_path, database_url, fake_sendgrid, signer, sendgrid_sandbox=True
    )
    transport = make_transport(settings)
    try:
        assert isinstance(transport, SendGridTransport)
        assert transport.reconcilable
        transport.send(sample_mail())
    finally:
        transport.close()
    assert fake_sendgrid.accepted[0].body["mail_settings"] == {"sandbox_mode": {"enable": True}}


def sample_mail() -> OutgoingMail:
    return OutgoingMail(
        idempotency_key="k",
        sender=Mailbox("onboarding@acme.example", "Acme"),
        to=Mailbox("taro@example.jp", "Taro"),
        subject="hi",
        html="<p>hi</p>",
        text="hi",
    )


def test_a_row_taken_back_while_waiting_for_a_send_slot_is_left_to_its_new_worker(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid
) -> None:
    """The wait for a slot outlived the lease: the row was dispatched again and another
    worker may be sending it. The requeue leaves it alone (it would have made a row in
    another worker's hands due again, and given back an attempt that worker made)."""
    post_signup(sg_client, signup_payload("a"))
    claimed: dict[str, Any] = {}

    class LeaseOutlived:
        """No slot now, and none before the row is taken back and dispatched again."""

        def try_acquire(self) -> bool:
            return False

        def acquire(self) -> bool:
            with sg_runtime.engine.begin() as connection:
                row = connection.execute(
                    select(scheduled_sends).where(scheduled_sends.c.state == "sending")
                ).one()
                claimed["row"] = row
                connection.execute(
                    scheduled_sends.update()
                    .where(scheduled_sends.c.id == row.id)
                    .values(dispatches=scheduled_sends.c.dispatches + 1)
                )
            return False

        def close(self) -> None:
            return None

    sg_runtime.rate_limiter = cast(SendRateLimiter, LeaseOutlived())
    assert run_due(sg_runtime) == ["ignored"]

    after: Any = send_row_for(sg_runtime, "a")
    before = claimed["row"]
    assert before.state == after.state == "sending"  # still the other worker's
    assert after.attempts == before.attempts  # not given back
    assert after.wake_at == before.wake_at and after.reason == before.reason
    assert fake_sendgrid.accepted == []
