"""The overview's health bands come from a snapshot the scheduler takes every five minutes,
never from counting the customers per page view; the trend's days before the first snapshot
are backfilled once from the score history, in the analytics time zone's days. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from orchestrator.db.tables import customers, health_band_daily, health_score_history
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import overview, snapshot_bands_if_due
from tests.support.signups import post_signup, signup_payload

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # the clock fixture's start: 2 November in Tokyo


def signed_up(client: TestClient, count: int) -> list[int]:
    for n in range(count):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    with client.app.state.runtime.engine.connect() as connection:  # type: ignore[attr-defined]
        return list(connection.execute(select(customers.c.id).order_by(customers.c.id)).scalars())


def view(runtime: Runtime, **kwargs: Any) -> Any:
    return overview(runtime.engine, rules=runtime.analytics_rules(), clock=runtime.clock, **kwargs)


def test_the_overview_reads_the_latest_snapshot_not_the_customers(
    client: TestClient, runtime: Runtime
) -> None:
    ids = signed_up(client, 2)
    rules, now = runtime.analytics_rules(), runtime.clock.now()
    before = view(runtime)
    assert before.bands == {} and before.bands_as_of is None  # none taken yet
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=now) == {"": 2}
    with runtime.engine.begin() as connection:
        connection.execute(
            update(customers).where(customers.c.id == ids[0]).values(health_band="red")
        )
    seen = view(runtime)
    assert seen.bands == {"": 2} and seen.bands_as_of == now  # the snapshot, not a count
    later = now + timedelta(minutes=4)
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=later) is None  # not due
    later = now + timedelta(minutes=5)
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=later) == {"": 1, "red": 1}
    assert view(runtime).bands == {"": 1, "red": 1}
    trend = view(runtime).band_trend  # the day keeps its last count
    assert [(day.day, day.customers) for day in trend] == [(date(2026, 11, 2), {"": 1, "red": 1})]


def scored(runtime: Runtime, customer_id: int, band: str, at: datetime) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(
            insert(health_score_history).values(
                customer_id=customer_id, score=50, band=band, components={}, computed_at=at
            )
        )


def test_the_first_run_backfills_the_trend_from_the_score_history_once(
    client: TestClient, runtime: Runtime
) -> None:
    first, second, third = signed_up(client, 3)
    with runtime.engine.begin() as connection:  # created on 29 October, Tokyo time
        connection.execute(update(customers).values(created_at=datetime(2026, 10, 29, tzinfo=UTC)))
    scored(runtime, first, "green", datetime(2026, 10, 30, 14, 59, tzinfo=UTC))  # 30th there
    scored(runtime, second, "green", datetime(2026, 10, 30, 15, 0, tzinfo=UTC))  # 31st there
    scored(runtime, first, "green", datetime(2026, 10, 31, 3, 0, tzinfo=UTC))  # no move
    scored(runtime, first, "red", datetime(2026, 10, 31, 4, 0, tzinfo=UTC))
    scored(runtime, second, "yellow", datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
    scored(runtime, second, "green", datetime(2026, 11, 1, 2, 0, tzinfo=UTC))  # back, same day
    rules = runtime.analytics_rules()
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=NOW) is not None
    trend = view(runtime, date_from=date(2026, 10, 28), date_to=date(2026, 11, 2)).band_trend
    assert {day.day: day.customers for day in trend if day.day < NOW.date()} == {
        date(2026, 10, 30): {"": 2, "green": 1},
        date(2026, 10, 31): {"": 1, "green": 1, "red": 1},
        date(2026, 11, 1): {"": 1, "green": 1, "red": 1},
    }
    with runtime.engine.connect() as connection:
        taken = connection.execute(
            select(health_band_daily.c.day, health_band_daily.c.taken_at)
        ).all()
    backfilled = {date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)}
    assert {day for day, at in taken if at is None} == backfilled
    assert third  # never scored: counted as '' on every day

    scored(runtime, third, "red", datetime(2026, 10, 30, 1, 0, tzinfo=UTC))  # late history
    later = NOW + timedelta(minutes=5)
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=later) is not None
    again = view(runtime, date_from=date(2026, 10, 30), date_to=date(2026, 10, 30)).band_trend
    assert again[0].customers == {"": 2, "green": 1}  # backfilled once, not again


def test_without_score_history_the_trend_starts_on_the_day_of_the_upgrade(
    client: TestClient, runtime: Runtime
) -> None:
    signed_up(client, 2)
    rules = runtime.analytics_rules()
    assert snapshot_bands_if_due(runtime.engine, rules=rules, now=NOW) == {"": 2}
    trend = view(runtime, date_from=date(2026, 10, 1), date_to=date(2026, 11, 2)).band_trend
    assert [(day.day, day.customers) for day in trend] == [(date(2026, 11, 2), {"": 2})]
