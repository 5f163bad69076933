"""The rollups are kept from the rows that changed, never a scan: after any history of state
changes, engagement bits and passes of the rollup job (small batches, interleaved with the
changes), they equal a recount from scratch of what each row says it counts for; a rebuild
gives the same numbers. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from orchestrator.analytics.rollups import count_changes, version_starts
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import (
    customers,
    enrollments,
    journey_version_starts,
    scheduled_sends,
)
from orchestrator.runtime import Runtime
from orchestrator.services.analytics import rebuild_rollups, refresh_rollups
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.rollups import recount, rollups, total
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY

STATES = ["pending", "sent", "skipped", "missed", "failed", "unknown", "cancelled", "reconciling"]
REASONS = [
    "step is not for tier low",
    "address suppressed (bounce)",
    "customer opted out",
    "condition false: x",
    "settled by hand",
]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def mutate(runtime: Runtime, rng: random.Random, clock: FrozenClock) -> None:
    """One random change to a few sends, an enrollment, or a customer's tier."""
    with runtime.engine.begin() as connection:
        ids = list(connection.execute(select(scheduled_sends.c.id)).scalars())
        for send_id in rng.sample(ids, k=min(len(ids), rng.randint(1, 6))):
            state = rng.choice(STATES)
            now = clock.now() + timedelta(hours=rng.randint(0, 24 * 40))
            values: dict[str, Any] = {"engagement": rng.randint(0, 127)}
            old = connection.execute(
                select(scheduled_sends.c.state).where(scheduled_sends.c.id == send_id)
            ).scalar_one()
            if state != old:  # a new outcome is decided at a moment (engagement alone is not)
                values.update(state=state, updated_at=now, reason=rng.choice(REASONS))
                values["sent_at"] = now if state == "sent" else None
            connection.execute(
                update(scheduled_sends).where(scheduled_sends.c.id == send_id).values(values)
            )
        if rng.random() < 0.3:
            state = rng.choice(["active", "converted", "exited"])
            enrollment_ids = list(connection.execute(select(enrollments.c.id)).scalars())
            chosen = rng.choice(enrollment_ids)
            connection.execute(
                update(enrollments).where(enrollments.c.id == chosen).values(state=state)
            )
        if rng.random() < 0.2:  # a stamped row keeps its tier; a new row takes the new one
            tier = rng.choice(["high", "low", "tech"])
            connection.execute(update(customers).where(customers.c.id == 1).values(tier=tier))


def started_by_version(runtime: Runtime) -> dict[int, int]:
    """The enrollments that started on each version, counted from scratch."""
    version = enrollments.c.started_version_id
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(version, func.count()).where(version.is_not(None)).group_by(version)
        )
        return {version_id: n for version_id, n in rows}


def version_starts_of(runtime: Runtime) -> dict[int, int]:
    """What the journey pages read, for every journey."""
    with runtime.engine.connect() as connection:
        return {
            version_id: n
            for journey_id in runtime.journeys
            for version_id, n in version_starts(connection, journey_id).items()
        }


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_equal_a_recount_after_random_histories(
    client: TestClient, runtime: Runtime, clock: FrozenClock, seed: int
) -> None:
    rng = random.Random(seed)
    for n, extra in enumerate(
        [{"tier": "high", "locale": "en", "annual_contract_value": 3_600_000}, {}, {}, {}]
    ):
        assert post_signup(client, signup_payload(f"c{n}", **extra)).status_code == 202
    zone = runtime.analytics_rules().zone
    for _ in range(40):
        mutate(runtime, rng, clock)
        if rng.random() < 0.5:  # a pass of a few rows only: batches end anywhere
            with runtime.engine.begin() as connection:
                count_changes(connection, zone, limit=rng.randint(1, 5))
        assert version_starts_of(runtime) == started_by_version(runtime)  # counted or not
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules(), batches=None)
    expected = recount(runtime)
    assert expected and rollups(runtime) == expected
    assert version_starts_of(runtime) == started_by_version(runtime) != {}

    report = rebuild_rollups(runtime.engine, rules=runtime.analytics_rules(), clock=clock)
    assert report.rows > 0 and rollups(runtime) == expected
    assert version_starts_of(runtime) == started_by_version(runtime)
    with runtime.engine.connect() as connection:  # all counted: the kept rows alone say it
        kept = {v: n for v, n in connection.execute(select(journey_version_starts))}
    assert kept == started_by_version(runtime)
    # every rollup row was written again (SQLite's count of them once came back as -1)
    assert report.rollup_rows >= len(expected) > 0


def test_a_send_is_counted_once_and_moves_when_its_outcome_moves(
    client: TestClient, runtime: Runtime
) -> None:
    assert post_signup(client, signup_payload("c1")).status_code == 202
    rules = runtime.analytics_rules()
    with runtime.engine.begin() as connection:
        send_id = connection.execute(
            select(scheduled_sends.c.id).where(scheduled_sends.c.step_id == "welcome")
        ).scalar_one()
        connection.execute(
            update(scheduled_sends)
            .where(scheduled_sends.c.id == send_id)
            .values(state="failed", reason="smtp 550")
        )
    refresh_rollups(runtime.engine, rules=rules)
    assert total(runtime, "failed") == 1 and total(runtime, "sent") == 0
    now = runtime.clock.now()
    with runtime.engine.begin() as connection:  # re-sent by hand: failed → sent, then opened
        connection.execute(
            update(scheduled_sends)
            .where(scheduled_sends.c.id == send_id)
            .values(state="sent", sent_at=now, engagement=1 | 2)
        )
    refresh_rollups(runtime.engine, rules=rules)
    assert (total(runtime, "failed"), total(runtime, "sent"), total(runtime, "opened")) == (0, 1, 1)
    assert refresh_rollups(runtime.engine, rules=rules).rows == 0
