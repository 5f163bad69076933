"""Send windows and the frequency cap through the real send path (scheduler tick → deliver),
with a frozen clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.errors import JourneyError
from orchestrator.journeys.loader import load_journey
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.delivery import deliver, deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.transports.outbox import OutboxTransport
from tests.support.delivery import run_due
from tests.support.environment import FixedDraw, make_settings
from tests.support.journeys import write_journeys
from tests.support.signups import outbox_files, post_signup, signup_payload

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
LEASE = timedelta(seconds=120)

ONE_STEP = """
name: News
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
"""

RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(tmp_path: Path, database_url: str, clock: FrozenClock) -> Iterator[RuntimeFactory]:
    built: list[Runtime] = []

    def build(journeys: dict[str, str], **overrides: Any) -> Runtime:
        directory = write_journeys(tmp_path / f"journeys{len(built)}", journeys)
        settings = make_settings(tmp_path, database_url, journeys_dir=directory, **overrides)
        runtime = build_runtime(
            settings,
            clock=clock,
            transport=OutboxTransport(settings.outbox_dir),
            jitter=FixedDraw(),
        )
        built.append(runtime)
        return runtime

    yield build
    for runtime in built:
        runtime.close()


def signup(runtime: Runtime, external_id: str = "cust-1", **fields: Any) -> None:
    with TestClient(create_app(runtime)) as client:
        response = post_signup(client, signup_payload(external_id, **fields))
        assert response.status_code == 202, response.text


def rows(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(
            connection.execute(select(scheduled_sends).order_by(scheduled_sends.c.id)).all()
        )


def test_a_step_due_at_three_in_the_morning_goes_out_at_the_windows_opening(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime({"news": ONE_STEP}, send_window="Mon-Fri 09:00-18:00")
    three_am = datetime(2026, 11, 3, 3, 0, tzinfo=NEW_YORK)  # a Tuesday, 08:00 UTC
    clock.set(three_am)
    signup(runtime, timezone="America/New_York", signed_up_at=three_am.isoformat())

    assert run_due(runtime) == ["deferred"]
    (row,) = rows(runtime)
    opening = datetime(2026, 11, 3, 9, 0, tzinfo=NEW_YORK)
    assert (row.state, row.wake_at, row.attempts, row.sent_at) == ("pending", opening, 0, None)
    assert row.reason == (
        "deferred until 2026-11-03T14:00:00+00:00: outside the send window "
        "Mon,Tue,Wed,Thu,Fri 09:00-18:00 in America/New_York"
    )

    clock.set(opening - timedelta(seconds=1))
    assert run_due(runtime) == [], "never early"
    clock.set(opening)
    assert run_due(runtime) == ["sent"]
    (row,) = rows(runtime)
    assert row.sent_at == opening and row.sent_at.astimezone(NEW_YORK).hour == 9
    assert len(outbox_files(runtime.settings)) == 1


def test_the_same_instant_is_inside_the_window_for_another_timezone(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime({"news": ONE_STEP}, send_window="09:00-18:00")
    clock.set(datetime(2026, 11, 3, 3, 0, tzinfo=NEW_YORK))  # 17:00 in Tokyo
    signup(runtime, "tokyo", timezone="Asia/Tokyo")
    signup(runtime, "new-york", timezone="America/New_York")
    assert sorted(run_due(runtime)) == ["deferred", "sent"]
    tokyo, new_york = rows(runtime)
    assert (tokyo.state, new_york.state) == ("sent", "pending")


def test_a_weekend_deferral_is_not_missed_by_the_grace_and_downtime_after_it_is(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime(
        {"news": ONE_STEP + "  - id: later\n    after: 3d\n    template: onboarding/faq\n"},
        send_window="Mon-Fri 09:00-18:00",
    )
    friday_evening = datetime(2026, 11, 6, 19, 0, tzinfo=TOKYO)
    clock.set(friday_evening)
    signup(runtime, signed_up_at=friday_evening.isoformat())
    assert run_due(runtime) == ["deferred"]

    monday = datetime(2026, 11, 9, 9, 0, tzinfo=TOKYO)  # 62 hours later, grace is 24 hours
    clock.set(monday + timedelta(minutes=5))
    assert run_due(runtime) == ["sent"]
    hello = rows(runtime)[0]
    assert hello.sent_at == monday + timedelta(minutes=5)

    # `later` was due Monday 19:00, deferred to Tuesday 09:00; the service is then down for 2 days.
    clock.set(datetime(2026, 11, 9, 19, 0, tzinfo=TOKYO))
    assert run_due(runtime) == ["deferred"]
    clock.set(datetime(2026, 11, 11, 10, 0, tzinfo=TOKYO))
    assert run_due(runtime) == ["missed"]
    assert "overdue by 1 day, 1:00:00" in (rows(runtime)[1].reason or "")


def test_a_journeys_own_window_and_quiet_days_win(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    journey = ONE_STEP + "send_window: Sat-Sun 10:00-12:00\nquiet_days: [2026-11-07]\n"
    runtime = make_runtime(
        {"news": journey}, send_window="Mon-Fri 09:00-18:00", quiet_days="2026-11-08"
    )
    clock.set(datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO))  # Monday: open by the installation
    signup(runtime)
    assert run_due(runtime) == ["deferred"]
    (row,) = rows(runtime)
    # Saturday 7th is the journey's quiet day, Sunday 8th the installation's: the 14th.
    assert row.wake_at == datetime(2026, 11, 14, 10, 0, tzinfo=TOKYO)
    assert "Sat,Sun 10:00-12:00 in Asia/Tokyo" in (row.reason or "")


def test_a_bad_window_in_a_journey_names_file_line_and_field(tmp_path: Path) -> None:
    directory = write_journeys(tmp_path, {"news": ONE_STEP + "send_window: Mon-Fry 9-18\n"})
    path = directory / "news.yaml"
    with pytest.raises(JourneyError) as caught:
        load_journey(path)
    line = path.read_text("utf-8").splitlines().index("send_window: Mon-Fry 9-18") + 1
    assert str(caught.value).startswith(f"{path}:{line}: send_window: invalid send window")


THREE_JOURNEYS = {
    name: f"""
name: Journey {name.upper()}
steps:
{transactional}  - id: first
    after: 0d
    template: onboarding/welcome
  - id: second
    after: 1d
    template: onboarding/basics
  - id: third
    after: 2d
    template: onboarding/faq
"""
    for name, transactional in (
        (
            "alpha",
            "  - id: receipt\n    after: 0d\n    template: onboarding/welcome\n"
            "    transactional: true\n",
        ),
        ("beta", ""),
        ("gamma", ""),
    )
}


def test_three_journeys_get_no_more_than_the_cap_and_every_deferred_mail_arrives_later(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime(THREE_JOURNEYS, frequency_cap="1/day,3/week")
    start = clock.now()
    signup(runtime)

    for _ in range(6 * 4 * 7):  # four weeks, a tick every six hours
        run_due(runtime)
        clock.advance(timedelta(hours=6))

    sends = rows(runtime)
    assert {row.state for row in sends} == {"sent"}, [(r.step_id, r.state) for r in sends]
    receipt = next(row for row in sends if row.step_id == "receipt")
    assert receipt.sent_at == start  # transactional: exempt, and not counted
    capped = sorted((row for row in sends if row.step_id != "receipt"), key=lambda r: r.sent_at)
    times = [row.sent_at for row in capped]
    assert times[0] == start
    assert all(b - a >= timedelta(days=1) for a, b in pairwise(times))
    assert all(d - a >= timedelta(days=7) for a, d in zip(times, times[3:], strict=False))
    # Deferred, never dropped, never early, in a stable order: earlier due first, then id.
    assert all(row.sent_at >= row.due_at for row in capped)
    assert sum(row.sent_at > row.due_at for row in capped) == 8
    assert [r.id for r in capped] == [r.id for r in sorted(capped, key=lambda r: (r.due_at, r.id))]
    assert len(outbox_files(runtime.settings)) == 10


def test_concurrent_workers_for_one_customer_admit_one_mail(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(THREE_JOURNEYS, frequency_cap="1/day")
    signup(runtime)
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    capped = [row.id for row in rows(runtime) if row.id in ids and row.step_id == "first"]
    assert len(capped) == 3

    results: dict[int, str] = {}
    barrier = threading.Barrier(len(capped))

    def work(send_id: int) -> None:
        barrier.wait()
        results[send_id] = deliver(runtime.delivery_deps(), send_id)

    threads = [threading.Thread(target=work, args=(send_id,)) for send_id in capped]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results.values()) == ["deferred", "deferred", "sent"]
    sent = [send_id for send_id, state in results.items() if state == "sent"]
    assert sent == [min(capped)], "the earliest (lowest id) goes first, whoever runs first"


def test_a_batch_counts_the_cap_once_and_decides_as_one_send_at_a_time(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(THREE_JOURNEYS, frequency_cap="1/day")
    for name in ("a", "b", "c"):
        signup(runtime, name)
    ids = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert len(ids) == 3 * 4  # per customer: three capped first steps and one receipt
    statements: list[str] = []

    def statement(*args: Any) -> None:
        statements.append(args[2])

    event.listen(runtime.engine, "before_cursor_execute", statement)
    try:
        outcomes = dict(zip(ids, deliver_batch(runtime.delivery_deps(), ids), strict=True))
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)

    by_customer: dict[int, list[Any]] = {}
    for row in rows(runtime):
        if row.id in outcomes and row.step_id == "first":
            by_customer.setdefault(row.customer_id, []).append(row)
    assert len(by_customer) == 3
    for capped in by_customer.values():  # the earliest goes, the two after it wait
        states = [outcomes[row.id] for row in sorted(capped, key=lambda r: r.id)]
        assert states == ["sent", "deferred", "deferred"]
    receipts = [row for row in rows(runtime) if row.step_id == "receipt"]
    assert [outcomes[row.id] for row in receipts] == ["sent"] * 3  # exempt
    # one lock of the three customers (PostgreSQL; SQLite's writers take turns anyway), one
    # read of their sends, one stamp for the three admitted: not one of each per mail
    locks = [s for s in statements if "FOR UPDATE" in s and "FROM customer" in s]
    assert len(locks) == (1 if runtime.engine.dialect.name == "postgresql" else 0)
    assert (
        sum("scheduled_send.admitted_at" in s and s.startswith("SELECT") for s in statements) == 1
    )
    assert sum(s.startswith("UPDATE scheduled_send SET admitted_at") for s in statements) == 1


def test_no_window_and_no_cap_write_nothing_extra(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime({"news": ONE_STEP})
    signup(runtime)
    assert run_due(runtime) == ["sent"]
    (row,) = rows(runtime)
    assert (row.attempts, row.reason, row.sent_at) == (1, None, clock.now())
    assert clock.now().tzinfo is UTC or clock.now().utcoffset() == timedelta(0)


class DeniesOnce:
    """A send-rate limiter with no slot the first time it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def try_acquire(self) -> bool:
        return False

    def acquire(self) -> bool:
        self.asked += 1
        return self.asked > 1

    def close(self) -> None:
        return None


def test_a_deferred_step_requeued_by_the_rate_limiter_is_still_not_missed(
    make_runtime: RuntimeFactory, clock: FrozenClock
) -> None:
    runtime = make_runtime({"news": ONE_STEP}, send_window="Mon-Fri 09:00-18:00")
    friday_evening = datetime(2026, 11, 6, 19, 0, tzinfo=TOKYO)
    clock.set(friday_evening)
    signup(runtime, signed_up_at=friday_evening.isoformat())
    assert run_due(runtime) == ["deferred"]

    runtime.rate_limiter = DeniesOnce()  # type: ignore[assignment]
    clock.set(datetime(2026, 11, 9, 9, 0, tzinfo=TOKYO))
    assert run_due(runtime) == ["pending"]  # admitted, then no send slot: requeued
    (row,) = rows(runtime)
    assert row.reason is not None and not row.reason.startswith("deferred")
    clock.advance(timedelta(seconds=1))
    assert run_due(runtime) == ["sent"]
