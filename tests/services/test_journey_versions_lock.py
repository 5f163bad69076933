"""A customer who signs up while a change is being applied waits for it and starts on the new
version, never left behind on the old one (PostgreSQL: enrolling reads the journey's current
row ``FOR SHARE``, applying holds it ``FOR UPDATE``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.journey_catalog import read_journey_contents
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from orchestrator.versions.store import insert_version, lock_current, make_current
from tests.support.environment import START, FixedDraw, make_settings, require_server
from tests.support.journeys import write_journeys
from tests.support.versions import FLOW, enroll, enrollment_of, flow_folders, version_numbers

HANG = 30  # a hang guard, not a timing assertion


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    from orchestrator.db.engine import make_engine
    from orchestrator.db.migrate import upgrade
    from tests.conftest import _reset

    url = require_server("STEPMAIL_TEST_POSTGRES_URL")
    upgrade(url)
    engine = make_engine(url)
    _reset(engine)
    engine.dispose()
    journeys, templates = flow_folders(tmp_path)
    return make_settings(tmp_path, url, journeys_dir=journeys, templates_dir=templates)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    clock = FrozenClock(START)
    runtime = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    yield runtime
    runtime.close()


@pytest.mark.postgres
def test_a_signup_during_a_change_waits_and_starts_on_the_new_version(
    runtime: Runtime, settings: Settings
) -> None:
    write_journeys(settings.journeys_dir, {"flow": FLOW.replace("after: 3d", "after: 4d")})
    contents, _ = read_journey_contents(settings.journeys_dir, settings.templates_dir, "ja")
    content, _ = contents["flow"]
    done: list[int] = []
    with runtime.engine.connect() as applying:
        transaction = applying.begin()
        lock_current(applying, "flow")  # a process applying the change holds the lock
        signup = threading.Thread(target=lambda: done.append(enroll(runtime, "during")))
        signup.start()
        deadline = time.monotonic() + HANG
        while not _waiting_for_a_lock(runtime) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_for_a_lock(runtime), "the signup did not wait for the change"
        assert not done
        version = insert_version(applying, content, START)
        make_current(applying, "flow", version.ref.id, {}, START)
        transaction.commit()
    signup.join(timeout=HANG)
    assert done
    enrollment = enrollment_of(runtime, done[0])
    numbers = version_numbers(runtime)
    assert numbers[enrollment.started_version_id] == 2
    assert numbers[enrollment.version_id] == 2


def _waiting_for_a_lock(runtime: Runtime) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with runtime.engine.connect() as connection:
        return bool(connection.execute(query).scalar())
