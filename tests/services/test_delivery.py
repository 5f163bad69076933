"""The send path's guarantees: one send per row whatever the messages, and every reason not to
send recorded."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.clock import FrozenClock
from orchestrator.db.models import Enrollment
from orchestrator.db.tables import delivery_attempts, scheduled_sends
from orchestrator.delivery.outcomes import retry_delay
from orchestrator.errors import (
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.recipients.suppression import suppress
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver, deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail
from tests.support.crash import DiesMidCall, WorkerKilled
from tests.support.delivery import run_due
from tests.support.environment import STANDARD_JOURNEYS, FixedDraw
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.transports import ScriptedTransport, welcome_row

LEASE = timedelta(seconds=120)


def claim_welcome(runtime: Runtime) -> int:
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == 1
    return ids[0]


def test_a_duplicated_message_sends_once(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    send_id = claim_welcome(runtime)

    assert deliver(runtime.delivery_deps(), send_id) == "sent"
    assert deliver(runtime.delivery_deps(), send_id) == "ignored"
    assert len(outbox_files(settings)) == 1


def test_concurrent_duplicate_messages_send_once(client: TestClient, runtime: Runtime) -> None:
    transport = ScriptedTransport()
    runtime.transport = transport
    post_signup(client, signup_payload())
    send_id = claim_welcome(runtime)
    results: list[str] = []
    deps = runtime.delivery_deps()
    threads = [
        threading.Thread(target=lambda: results.append(deliver(deps, send_id))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["ignored"] * 5 + ["sent"]
    assert len(transport.sent) == 1


def test_a_lost_message_is_dispatched_again_after_the_lease(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    claim_welcome(runtime)  # the message never reaches a worker (Redis emptied, worker died)

    assert run_due(runtime) == []  # still leased
    clock.advance(LEASE)
    assert run_due(runtime) == ["sent"]
    assert welcome_row(runtime).dispatches == 2
    assert len(outbox_files(settings)) == 1


def sign_up_and_claim(client: TestClient, runtime: Runtime, count: int) -> list[int]:
    for n in range(count):
        post_signup(client, signup_payload(f"batch-{n}"))
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == count
    return ids


def rows_by_id(runtime: Runtime, ids: list[int]) -> list[Any]:
    with runtime.engine.connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(
                select(scheduled_sends).where(scheduled_sends.c.id.in_(ids))
            )
        }
    return [rows[i] for i in ids]


def attempt_outcomes(runtime: Runtime, send_id: int) -> list[tuple[int, str | None]]:
    with runtime.engine.connect() as connection:
        query = (
            select(delivery_attempts.c.attempt, delivery_attempts.c.outcome)
            .where(delivery_attempts.c.scheduled_send_id == send_id)
            .order_by(delivery_attempts.c.id)
        )
        return [(row.attempt, row.outcome) for row in connection.execute(query)]


def test_a_worker_killed_mid_batch_leaves_only_the_mail_in_hand_unknown(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    first = ScriptedTransport()
    runtime.transport = DiesMidCall(first, die_at=3)  # the server took the third, then death
    ids = sign_up_and_claim(client, runtime, 5)
    with pytest.raises(WorkerKilled):
        deliver_batch(runtime.delivery_deps(), ids)

    clock.advance(LEASE)
    survivor = ScriptedTransport()
    runtime.transport = survivor
    run_due(runtime)

    rows = rows_by_id(runtime, ids)
    assert [row.state for row in rows] == ["sent", "sent", "unknown", "sent", "sent"]
    assert (len(first.sent), len(survivor.sent)) == (3, 2)  # every mail reached a server once
    assert [attempt_outcomes(runtime, i) for i in ids] == [
        [(1, "sent")],
        [(1, "sent")],
        [(1, "lost")],
        [(1, "sent")],  # the claim the dead worker never used was given back
        [(1, "sent")],
    ]
    assert [row.provider_message_id for row in rows[:2]] == ["msg-1", "msg-2"]


def test_a_worker_killed_before_its_first_hand_over_strands_nothing(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.transport = DiesMidCall(ScriptedTransport(), die_at=1, mail_left=False)
    ids = sign_up_and_claim(client, runtime, 3)
    with pytest.raises(WorkerKilled):
        deliver_batch(runtime.delivery_deps(), ids)
    clock.advance(LEASE)
    survivor = ScriptedTransport()
    runtime.transport = survivor

    run_due(runtime)
    # The first call had begun, so that mail stays unknown even though it never left: the
    # record cannot know how far a call got. The others are simply sent.
    assert [row.state for row in rows_by_id(runtime, ids)] == ["unknown", "sent", "sent"]
    assert len(survivor.sent) == 2


def test_a_worker_killed_mid_send_to_the_outbox_is_completed_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    outbox = runtime.transport
    runtime.transport = DiesMidCall(outbox, die_at=2)
    ids = sign_up_and_claim(client, runtime, 3)
    with pytest.raises(WorkerKilled):
        deliver_batch(runtime.delivery_deps(), ids)
    clock.advance(LEASE)
    runtime.transport = outbox

    run_due(runtime)
    assert [row.state for row in rows_by_id(runtime, ids)] == ["sent"] * 3
    assert len(outbox_files(settings)) == 3
    assert attempt_outcomes(runtime, ids[1]) == [(1, "lost"), (2, "sent")]  # resent: idempotent


def test_a_row_taken_back_from_a_slow_worker_is_not_handed_over_by_it(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    ids = sign_up_and_claim(client, runtime, 2)

    class TooSlow(ScriptedTransport):
        """Stalls so long on the first mail that the second row's lease runs out, and the
        scheduler gives that row to another worker, which claims it."""

        def send(self, mail: OutgoingMail) -> SendResult:
            if not self.sent:
                clock.advance(LEASE)
                assert claim_due_sends(runtime.engine, clock.now(), 100, LEASE) == ids
                with runtime.engine.begin() as connection:
                    connection.execute(
                        update(scheduled_sends)
                        .where(scheduled_sends.c.id == ids[1])
                        .values(state="sending", attempts=scheduled_sends.c.attempts + 1)
                    )
            return super().send(mail)

    slow = TooSlow()
    runtime.transport = slow
    assert deliver_batch(runtime.delivery_deps(), ids) == ["sent", "ignored"]
    assert len(slow.sent) == 1
    assert attempt_outcomes(runtime, ids[1]) == []  # the other worker's to hand over


def test_transient_errors_retry_with_backoff_then_send_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    transport = ScriptedTransport(
        TransientDeliveryError("busy", status=503),
        TransientDeliveryError("slow down", status=429, retry_after=600),
    )
    runtime.transport = transport
    post_signup(client, signup_payload())

    assert run_due(runtime) == ["pending"]
    clock.advance(retry_delay(1, None, FixedDraw()))
    assert run_due(runtime) == ["pending"]
    clock.advance(timedelta(seconds=599))
    assert run_due(runtime) == []  # the provider asked for 600 s
    clock.advance(timedelta(seconds=1))
    assert run_due(runtime) == ["sent"]
    assert len(transport.sent) == 1
    with runtime.engine.connect() as connection:
        outcomes = (
            connection.execute(select(delivery_attempts.c.outcome).order_by(delivery_attempts.c.id))
            .scalars()
            .all()
        )
    assert outcomes == ["transient", "transient", "sent"]


def test_a_permanent_error_fails_without_retry_and_is_visible(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.transport = ScriptedTransport(
        PermanentDeliveryError(
            "bad request",
            status=400,
            body="The from address does not match a verified Sender Identity.",
        )
    )
    post_signup(client, signup_payload())

    assert run_due(runtime) == ["failed"]
    clock.advance(timedelta(days=1))
    assert run_due(runtime) == ["sent"]  # the next step, not a retry of the failed one
    assert "verified Sender Identity" in (welcome_row(runtime).reason or "")


def test_an_unknown_outcome_is_held_not_resent(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    transport = ScriptedTransport(UnknownDeliveryOutcome("read timeout"))
    runtime.transport = transport
    post_signup(client, signup_payload())

    assert run_due(runtime) == ["unknown"]
    clock.advance(timedelta(hours=1))
    assert run_due(runtime) == []
    assert transport.sent == []


def test_a_suppressed_address_is_skipped_with_the_reason(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    from sqlalchemy.orm import Session

    post_signup(client, signup_payload())
    with Session(runtime.engine) as session, session.begin():
        suppress(session, "CUST-1@customer.example", "unsubscribe", "test", runtime.clock.now())

    assert run_due(runtime) == ["skipped"]
    assert "suppressed" in (welcome_row(runtime).reason or "")
    assert outbox_files(settings) == []


@pytest.fixture
def conditional_journeys(tmp_path: Path) -> Path:
    import yaml

    directory = tmp_path / "journeys"
    directory.mkdir()
    onboarding = yaml.safe_load((STANDARD_JOURNEYS / "onboarding.yaml").read_text("utf-8"))
    template_vars = yaml.safe_dump({"vars": onboarding["vars"]})
    (directory / "trial.yaml").write_text(
        template_vars
        + """
id: trial
name: Trial
exit_when: ["attributes.get('plan_cancelled', false)"]
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
  - id: enterprise_tips
    after: 1d
    template: onboarding/basics
    when: "customer.annual_contract_value >= 1000000"
  - id: only_high
    after: 2d
    template: onboarding/faq
    tiers: [high]
  - id: later
    after: 3d
    template: onboarding/faq
""",
        encoding="utf-8",
    )
    return directory


def test_false_condition_and_other_tier_skip_with_reasons(
    tmp_path: Path, database_url: str, clock: FrozenClock, conditional_journeys: Path
) -> None:
    from orchestrator.runtime import build_runtime
    from tests.support.environment import make_settings

    settings = make_settings(tmp_path, database_url, journeys_dir=conditional_journeys)
    runtime = build_runtime(settings, clock=clock)
    from fastapi.testclient import TestClient as Client

    from orchestrator.api.app import create_app

    with Client(create_app(runtime)) as client:
        post_signup(client, signup_payload())
    first = run_due(runtime)
    clock.advance(timedelta(days=2))
    results = run_due(runtime)
    runtime.close()

    assert (first, results) == (["sent"], ["skipped", "skipped"])
    with runtime.engine.connect() as connection:
        reasons = dict(
            connection.execute(select(scheduled_sends.c.step_id, scheduled_sends.c.reason)).all()
        )
    assert (
        reasons["enterprise_tips"] == "condition false: customer.annual_contract_value >= 1000000"
    )
    assert reasons["only_high"] == "step is not for tier low"


def test_an_exit_condition_ends_the_enrollment_and_cancels_the_rest(
    tmp_path: Path, database_url: str, clock: FrozenClock, conditional_journeys: Path
) -> None:
    from fastapi.testclient import TestClient as Client

    from orchestrator.api.app import create_app
    from orchestrator.runtime import build_runtime
    from tests.support.environment import make_settings

    settings = make_settings(tmp_path, database_url, journeys_dir=conditional_journeys)
    runtime = build_runtime(settings, clock=clock)
    with Client(create_app(runtime)) as client:
        post_signup(client, signup_payload(attributes={"plan_cancelled": True}))
    results = run_due(runtime)

    assert results == ["cancelled"]
    with runtime.engine.connect() as connection:
        enrollment = connection.execute(select(Enrollment)).one()
        states = connection.execute(select(scheduled_sends.c.state)).scalars().all()
    runtime.close()
    assert enrollment.state == "exited" and "plan_cancelled" in enrollment.end_reason
    assert set(states) == {"cancelled"}


class SlowTransport(ScriptedTransport):
    """Each send takes 70 s of the frozen clock, and notes whether the row it sends is still
    leased (a scheduler would otherwise take it for a dead worker's row)."""

    def __init__(self, runtime: Runtime, clock: FrozenClock) -> None:
        super().__init__()
        self.runtime, self.clock = runtime, clock
        self.leased: list[bool] = []

    def send(self, mail: OutgoingMail) -> SendResult:
        self.clock.advance(timedelta(seconds=70))
        send_id = int(mail.metadata["stepmail_send_id"])
        with self.runtime.engine.connect() as connection:
            wake_at = connection.execute(
                select(scheduled_sends.c.wake_at).where(scheduled_sends.c.id == send_id)
            ).scalar_one()
        self.leased.append(wake_at > self.clock.now())
        return super().send(mail)


def test_a_slow_batch_keeps_its_rows_leased(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    transport = SlowTransport(runtime, clock)
    runtime.transport = transport
    for n in range(3):
        post_signup(client, signup_payload(f"slow-{n}"))
    ids = claim_due_sends(runtime.engine, clock.now(), 100, LEASE)

    assert deliver_batch(runtime.delivery_deps(), ids) == ["sent"] * 3
    assert transport.leased == [True, True, True]  # 70 s, 140 s, 210 s into a 120 s lease


def test_a_batch_records_each_mail_with_its_own_time_and_provider_id(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    transport = SlowTransport(runtime, clock)  # each send 70 s after the previous one
    runtime.transport = transport
    for n in range(3):
        post_signup(client, signup_payload(f"batch-{n}"))
    start = clock.now()
    ids = claim_due_sends(runtime.engine, start, 100, LEASE)

    assert deliver_batch(runtime.delivery_deps(), ids) == ["sent"] * 3
    with runtime.engine.connect() as connection:
        sends = connection.execute(
            select(scheduled_sends).where(scheduled_sends.c.id.in_(ids))
        ).all()
        attempts = connection.execute(select(delivery_attempts)).all()
    by_id = {row.id: row for row in sends}
    expected = [(start + timedelta(seconds=70 * (n + 1)), f"msg-{n + 1}") for n in range(3)]
    assert [(by_id[i].sent_at, by_id[i].provider_message_id) for i in ids] == expected
    assert {row.state for row in sends} == {"sent"}
    by_send = {row.scheduled_send_id: row for row in attempts}
    assert [
        (by_send[i].outcome, by_send[i].finished_at, by_send[i].provider_message_id) for i in ids
    ] == [("sent", at, message_id) for at, message_id in expected]
