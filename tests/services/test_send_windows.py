"""A batch's mails posted a window at a time (``STEPMAIL_SENDGRID_IN_FLIGHT``): one committed
hand-over per window, each mail's own outcome exactly as if it had gone alone, a row taken
back left alone, no customer twice in a window, and a window that ends rather than wait for
a send slot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from orchestrator.api.app import create_app
from orchestrator.archive.store import ArchiveEntry
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import delivery_attempts, scheduled_sends
from orchestrator.delivery.hand_over import HandOverLog
from orchestrator.journeys.decide import Claim
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.delivery import DeliveryDeps, _next_window, deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from tests.fakes.sendgrid_events import EventSigner
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.support.environment import FixedDraw
from tests.support.sendgrid import fake_sendgrid, sendgrid_settings, signer
from tests.support.signups import post_signup, signup_payload

__all__ = ["fake_sendgrid", "signer"]

LEASE = timedelta(seconds=120)
IN_FLIGHT = 4


def open_runtime(
    tmp_path: Path,
    database_url: str,
    fake: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
    in_flight: int,
) -> Runtime:
    settings = sendgrid_settings(tmp_path, database_url, fake, signer, sendgrid_in_flight=in_flight)
    return build_runtime(settings, clock=clock, jitter=FixedDraw())


@pytest.fixture
def windowed(
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> Iterator[Runtime]:
    runtime = open_runtime(tmp_path, database_url, fake_sendgrid, signer, clock, IN_FLIGHT)
    yield runtime
    runtime.close()


def sign_up(runtime: Runtime, count: int) -> list[int]:
    """``count`` customers signed up, their welcome rows claimed (oldest first)."""
    with TestClient(create_app(runtime)) as client:
        for n in range(count):
            assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == count
    return sorted(ids)


def count_hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Each hand-over's send ids, as the delivery service asks for them."""
    windows: list[list[int]] = []
    original = HandOverLog.hand_over

    def hand_over(self: HandOverLog, claims: list[Claim], now: datetime) -> dict[int, int]:
        windows.append([claim.send_id for claim in claims])
        return original(self, claims, now)

    monkeypatch.setattr(HandOverLog, "hand_over", hand_over)
    return windows


def attempts(runtime: Runtime) -> dict[int, tuple[str | None, str | None]]:
    """Each row's attempt: its outcome and the provider's message id."""
    query = select(
        delivery_attempts.c.scheduled_send_id,
        delivery_attempts.c.outcome,
        delivery_attempts.c.provider_message_id,
    )
    with runtime.engine.connect() as connection:
        return {row[0]: (row[1], row[2]) for row in connection.execute(query)}


def test_each_window_is_one_hand_over_and_every_mail_is_recorded_sent(
    windowed: Runtime, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sign_up(windowed, 10)
    windows = count_hand_overs(monkeypatch)

    outcomes = deliver_batch(windowed.delivery_deps(), ids)

    assert outcomes == ["sent"] * 10
    assert windows == [ids[0:4], ids[4:8], ids[8:10]]
    assert len(fake_sendgrid.accepted) == 10
    given = {
        int(m.body["custom_args"]["stepmail_send_id"]): m.message_id for m in fake_sendgrid.accepted
    }
    assert attempts(windowed) == {send_id: ("sent", given[send_id]) for send_id in ids}


def recipient_number(body: dict[str, Any]) -> int:
    """n of the mail to customer cn (signup_payload's addresses)."""
    email: str = body["personalizations"][0]["to"][0]["email"]
    return int(email.split("@")[0].removeprefix("c"))


ANSWERS = ["ok", "500", "400", "hang", "ok", "drop", "429", "ok"]


@pytest.mark.parametrize("in_flight", [1, IN_FLIGHT])
def test_each_mail_of_a_window_ends_as_it_would_alone(
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
    in_flight: int,
) -> None:
    fake_sendgrid.script(lambda body: ANSWERS[recipient_number(body)])
    runtime = open_runtime(tmp_path, database_url, fake_sendgrid, signer, clock, in_flight)
    try:
        ids = sign_up(runtime, len(ANSWERS))
        outcomes = deliver_batch(runtime.delivery_deps(), ids)
        outcomes_by_answer = dict(zip(ANSWERS, outcomes, strict=True))
        recorded = attempts(runtime)
    finally:
        runtime.close()

    assert outcomes_by_answer == {
        "ok": "sent",
        "500": "pending",
        "400": "failed",
        "hang": "reconciling",
        "drop": "reconciling",
        "429": "pending",
    }
    assert [recorded[send_id][0] for send_id in ids] == [
        "sent", "transient", "permanent", "unknown", "sent", "unknown", "transient", "sent",
    ]  # fmt: skip
    assert all(
        recorded[send_id][1] for send_id, answer in zip(ids, ANSWERS, strict=True) if answer == "ok"
    )


def test_a_row_taken_back_before_its_window_is_handed_over_is_not_sent(
    windowed: Runtime, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sign_up(windowed, 4)
    original = HandOverLog.hand_over

    def taken_back_first(self: HandOverLog, claims: list[Claim], now: datetime) -> dict[int, int]:
        with windowed.engine.begin() as connection:  # the scheduler dispatched it again
            connection.execute(
                update(scheduled_sends)
                .where(scheduled_sends.c.id == ids[1])
                .values(dispatches=scheduled_sends.c.dispatches + 1)
            )
        return original(self, claims, now)

    monkeypatch.setattr(HandOverLog, "hand_over", taken_back_first)
    outcomes = deliver_batch(windowed.delivery_deps(), ids)

    assert outcomes == ["sent", "ignored", "sent", "sent"]
    sent_to = sorted(int(m.body["custom_args"]["stepmail_send_id"]) for m in fake_sendgrid.accepted)
    assert sent_to == [ids[0], ids[2], ids[3]]
    assert ids[1] not in attempts(windowed)


def test_a_stopping_worker_finishes_its_window_and_hands_the_rest_back(
    windowed: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    """Asked to stop while its first window went out, the batch sends no other window: its
    other rows are pending again, due at once, with their attempt given back, and the next
    worker sends each of them once. A row taken back meanwhile (dispatched again: another
    worker may be sending it) is left alone."""
    ids = sign_up(windowed, 10)
    with windowed.engine.connect() as connection:
        counts = connection.execute(select(scheduled_sends.c.id, scheduled_sends.c.attempts))
        dispatched = {send_id: count for send_id, count in counts}
    asked: list[bool] = []

    taken_back = ids[-1]

    def stop_after_the_first_window() -> bool:
        asked.append(True)
        if len(asked) == 2:
            with windowed.engine.begin() as connection:  # its lease ran out: dispatched again
                connection.execute(
                    update(scheduled_sends)
                    .where(scheduled_sends.c.id == taken_back)
                    .values(dispatches=scheduled_sends.c.dispatches + 1)
                )
        return len(asked) > 1

    deps = replace(windowed.delivery_deps(), stopping=stop_after_the_first_window)
    outcomes = deliver_batch(deps, ids)

    assert outcomes == ["sent"] * IN_FLIGHT + ["pending"] * (9 - IN_FLIGHT) + ["ignored"]
    assert len(fake_sendgrid.accepted) == IN_FLIGHT
    assert set(attempts(windowed)) == set(ids[:IN_FLIGHT])  # no attempt for those handed back
    with windowed.engine.connect() as connection:
        state = select(scheduled_sends.c.state).where(scheduled_sends.c.id == taken_back)
        assert connection.execute(state).scalar() == "sending"  # the other worker's
    query = select(
        scheduled_sends.c.id,
        scheduled_sends.c.state,
        scheduled_sends.c.wake_at,
        scheduled_sends.c.attempts,
        scheduled_sends.c.reason,
    ).where(scheduled_sends.c.id.in_(ids[IN_FLIGHT:-1]))
    with windowed.engine.connect() as connection:
        rows = connection.execute(query).all()
    assert {row.state for row in rows} == {"pending"}
    assert all(row.wake_at == clock.now() for row in rows)  # due at once
    assert all(row.attempts == dispatched[row.id] for row in rows)  # as before the worker took it
    assert all("stopping" in row.reason for row in rows)

    again = claim_due_sends(windowed.engine, clock.now(), 100, LEASE)
    assert sorted(again) == ids[IN_FLIGHT:-1]
    assert deliver_batch(windowed.delivery_deps(), again) == ["sent"] * (9 - IN_FLIGHT)
    sent_to = [int(m.body["custom_args"]["stepmail_send_id"]) for m in fake_sendgrid.accepted]
    assert sorted(sent_to) == ids[:-1]  # each once


def test_the_hand_over_connection_goes_back_with_the_servers_own_plan_choice(
    windowed: Runtime, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    ids = sign_up(windowed, 2)
    assert deliver_batch(windowed.delivery_deps(), ids) == ["sent", "sent"]
    with windowed.engine.connect() as connection:  # the pool's one idle connection, or a new one
        assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "auto"


# -- how windows are cut (no database: the delivery service's own rule) ----------------------


def claim(send_id: int, customer_id: int) -> Claim:
    due = datetime(2026, 1, 1)
    return Claim(send_id, send_id, customer_id, "onboarding", "welcome", due, 1)


class Limiter:
    """Slots: ``free`` taken at once, then each one only after a wait."""

    def __init__(self, free: int) -> None:
        self.free, self.waited = free, 0

    def try_acquire(self) -> bool:
        self.free -= 1
        return self.free >= 0

    def acquire(self) -> bool:
        self.waited += 1
        return True


class Flushes:
    def __init__(self) -> None:
        self.count = 0

    def flush(self) -> None:
        self.count += 1


def cut(
    customers: list[int], size: int, limiter: Limiter | None = None
) -> tuple[list[list[int]], int]:
    """The windows ``_next_window`` cuts for mails to ``customers`` (send ids 1, 2, ...), and
    how often it put the sent mails on the record before waiting."""
    ready = [
        (claim(n + 1, customer), cast(ArchiveEntry, None)) for n, customer in enumerate(customers)
    ]
    deps = cast(DeliveryDeps, SimpleNamespace(rate_limiter=limiter))
    hand_overs = Flushes()
    windows, position = [], 0
    while position < len(ready):
        window, position = _next_window(deps, ready, position, size, cast(Any, hand_overs), {})
        windows.append([c.send_id for c, _ in window])
    return windows, hand_overs.count


def test_windows_hold_at_most_their_size() -> None:
    assert cut([1, 2, 3, 4, 5, 6, 7], 3) == ([[1, 2, 3], [4, 5, 6], [7]], 0)
    assert cut([1, 2, 3], 1) == ([[1], [2], [3]], 0)


def test_a_customers_second_mail_waits_for_the_next_window() -> None:
    assert cut([1, 2, 1, 3, 1], 4) == ([[1, 2], [3, 4], [5]], 0)


def test_a_window_ends_rather_than_wait_for_a_send_slot() -> None:
    limiter = Limiter(free=2)
    windows, flushes = cut([1, 2, 3, 4, 5], 4, limiter)
    # two slots at once; then each window begins with one waited for (the sent mails put on
    # the record first), and ends at the next slot that is not free
    assert windows == [[1, 2], [3], [4], [5]]
    assert limiter.waited == 3
    assert flushes == 3
