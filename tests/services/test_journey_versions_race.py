"""Two processes see the same changed journey at the same moment and race to apply it, on
SQLite and PostgreSQL: exactly one applies it, the other finds it current, and every row in
flight is moved once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import journey_versions, scheduled_sends
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.signup import enroll_many
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.environment import START, FixedDraw
from tests.support.journeys import write_journeys
from tests.support.versions import (
    FLOW_CHANGED,
    apply_in_a_process,
    flow_settings,
)

CUSTOMERS = 300


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return flow_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    yield runtime
    runtime.close()


def _count(runtime: Runtime, step_id: str, state: str) -> int:
    query = select(func.count()).where(
        scheduled_sends.c.step_id == step_id, scheduled_sends.c.state == state
    )
    with runtime.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_two_processes_racing_apply_a_change_once(runtime: Runtime, settings: Settings) -> None:
    signups = [
        SignupRequest(
            external_id=f"c{n}", email=f"c{n}@customer.example", name="Customer", tier="tech"
        )
        for n in range(CUSTOMERS)
    ]
    enroll_many(
        runtime.engine,
        signups,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )
    write_journeys(settings.journeys_dir, {"flow": FLOW_CHANGED})
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    now = START + timedelta(hours=1)
    processes = [
        context.Process(
            target=apply_in_a_process,
            args=(
                settings.database_url,
                settings.journeys_dir,
                settings.templates_dir,
                now,
                barrier,
                results,
            ),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    said = sorted(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert said == ["applied", "current"]
    with runtime.engine.connect() as connection:
        versions = connection.execute(
            select(journey_versions.c.number, journey_versions.c.applied_at).order_by(
                journey_versions.c.number
            )
        ).all()
        faq_due = (
            connection.execute(
                select(scheduled_sends.c.due_at)
                .where(scheduled_sends.c.step_id == "faq")
                .distinct()
            )
            .scalars()
            .all()
        )
    assert [number for number, _ in versions] == [1, 2]
    assert all(applied is not None for _, applied in versions)
    assert faq_due == [START + timedelta(days=4)]  # moved once: 3d → 4d, not 4d → 4d → ...
    assert _count(runtime, "webinar_invite", "pending") == CUSTOMERS  # one row each
    assert _count(runtime, "legacy_tips", "cancelled") == CUSTOMERS
