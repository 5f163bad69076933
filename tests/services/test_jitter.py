"""Retries are spread out: sends that failed together come back over a stretch of time, never
sooner than the backoff, the provider's Retry-After or the reconciliation window."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.jitter import spread
from orchestrator.delivery.outcomes import retry_delay
from orchestrator.errors import TransientDeliveryError
from orchestrator.runtime import Runtime
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.support.delivery import run_due
from tests.support.environment import FixedDraw
from tests.support.sendgrid import fake_sendgrid, sg_client, sg_runtime, sg_settings, signer
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

OUTAGE = 20  # sends failing in the same tick


def welcome_wakes(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        query = select(scheduled_sends.c.wake_at).where(scheduled_sends.c.step_id == "welcome")
        return list(connection.execute(query).scalars())


def test_spread_stretches_a_delay_never_shortens_it() -> None:
    minute = timedelta(minutes=1)
    assert spread(minute, FixedDraw(0.0), 0.5) == minute
    assert spread(minute, FixedDraw(0.5), 0.5) == timedelta(seconds=75)
    assert spread(minute, FixedDraw(0.999), 0.5) < timedelta(seconds=90)


def test_retry_delay_keeps_the_backoff_and_retry_after_as_minimums() -> None:
    assert retry_delay(1, None, FixedDraw(0.0)) == timedelta(seconds=30)
    assert retry_delay(2, None, FixedDraw(0.5)) == timedelta(seconds=75)
    assert retry_delay(1, 600, FixedDraw(0.0)) == timedelta(seconds=600)
    assert retry_delay(30, None, FixedDraw(0.0)) == timedelta(hours=1)


def test_sends_failing_together_do_not_come_back_together(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.jitter = random.Random(8)
    runtime.transport = ScriptedTransport(
        *[TransientDeliveryError("busy", status=503) for _ in range(OUTAGE)]
    )
    for n in range(OUTAGE):
        post_signup(client, signup_payload(f"outage-{n}"))

    assert run_due(runtime) == ["pending"] * OUTAGE
    wakes = welcome_wakes(runtime)
    assert all(clock.now() + timedelta(seconds=30) <= w for w in wakes)
    assert all(w < clock.now() + timedelta(seconds=45) for w in wakes)
    assert len({w.replace(microsecond=0) for w in wakes}) > OUTAGE // 2  # not one wave

    clock.advance(timedelta(seconds=29))
    assert run_due(runtime) == []  # nothing before the backoff
    clock.advance(timedelta(seconds=16))
    assert run_due(runtime) == ["sent"] * OUTAGE
    assert len(runtime.transport.sent) == OUTAGE


def test_a_429_storm_comes_back_spread_out(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    sg_runtime.jitter = random.Random(4)
    fake_sendgrid.script(lambda body: "429")  # every answer, with Retry-After: 1
    for n in range(OUTAGE):
        post_signup(sg_client, signup_payload(f"storm-{n}"))

    assert run_due(sg_runtime) == ["pending"] * OUTAGE
    wakes = welcome_wakes(sg_runtime)
    assert min(wakes) >= clock.now() + timedelta(seconds=30)
    assert max(wakes) < clock.now() + timedelta(seconds=45)
    assert len({w.replace(microsecond=0) for w in wakes}) > OUTAGE // 2


class NoSlot:
    """A send-rate limiter with no slot to give."""

    def try_acquire(self) -> bool:
        return False

    def acquire(self) -> bool:
        return False

    def close(self) -> None:
        return None


def test_rows_without_a_send_slot_come_back_spread_over_a_second(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    runtime.jitter = FixedDraw(0.5)
    runtime.rate_limiter = NoSlot()  # type: ignore[assignment]
    post_signup(client, signup_payload("a"))

    assert run_due(runtime) == ["pending"]
    assert welcome_wakes(runtime) == [clock.now() + timedelta(seconds=1.5)]


def test_an_unknown_outcome_waits_its_window_and_a_random_part_of_it(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    sg_runtime.jitter = FixedDraw(0.5)
    fake_sendgrid.script(["hang"])
    post_signup(sg_client, signup_payload())

    assert run_due(sg_runtime) == ["reconciling"]
    window = timedelta(seconds=sg_runtime.settings.reconciliation_window)
    assert welcome_wakes(sg_runtime) == [clock.now() + window * 1.05]
