"""PostgreSQL + Redis with workers as separate ``dramatiq workers`` processes: a duplicated
message, an emptied Redis and a worker killed between claim and send each give one mail."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select, text

from orchestrator.db.engine import make_engine
from orchestrator.db.models import ScheduledSend
from orchestrator.db.tables import scheduled_sends
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.runtime import Runtime
from orchestrator.scheduling.broker import BrokerDispatcher, make_broker
from orchestrator.services.scheduling import tick
from orchestrator.services.signup import enroll_signup
from orchestrator.settings import Settings
from tests.integration.workers import (
    fresh_servers,
    real_time_runtime,
    worker_env,
    worker_processes,
)
from tests.support.environment import make_settings
from tests.support.signups import outbox_files

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
LEASE = timedelta(seconds=2)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    servers = fresh_servers()
    return make_settings(tmp_path, servers.pop("database_url"), **servers)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with real_time_runtime(settings) as runtime:
        yield runtime


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    with worker_processes(worker_env(settings), threads=2) as workers:
        yield workers.start


def enroll(runtime: Runtime) -> None:
    signup = SignupRequest(external_id="w-1", email="w-1@customer.example", name="Worker Test")
    enroll_signup(
        runtime.engine,
        signup,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def dispatch_due(runtime: Runtime, dispatcher: BrokerDispatcher) -> int:
    return tick(runtime.engine, dispatcher, datetime.now(UTC), 100, LEASE)


def welcome(runtime: Runtime) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(
            select(ScheduledSend).where(scheduled_sends.c.step_id == "welcome")
        ).one()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_duplicated_message_gives_one_mail(
    runtime: Runtime, settings: Settings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    dispatcher = BrokerDispatcher(make_broker(settings), settings.queue_name)
    enroll(runtime)
    assert dispatch_due(runtime, dispatcher) == 1
    dispatcher.dispatch([welcome(runtime).id])  # the same row id, a second message

    start_worker()
    wait_for(lambda: welcome(runtime).state == "sent")
    time.sleep(1)  # give the duplicate its chance to misbehave
    assert len(outbox_files(settings)) == 1


def test_an_emptied_redis_is_recovered_from_the_database(
    runtime: Runtime, settings: Settings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    dispatcher = BrokerDispatcher(make_broker(settings), settings.queue_name)
    enroll(runtime)
    assert dispatch_due(runtime, dispatcher) == 1
    redis.Redis.from_url(str(settings.redis_url)).flushdb()  # every queued message is gone

    start_worker()
    wait_for(lambda: datetime.now(UTC) > welcome(runtime).wake_at)
    assert dispatch_due(runtime, dispatcher) == 1  # the lease ran out: dispatched again
    wait_for(lambda: welcome(runtime).state == "sent")
    assert len(outbox_files(settings)) == 1


def test_a_worker_killed_between_claim_and_send_gives_exactly_one_mail(
    runtime: Runtime, settings: Settings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    dispatcher = BrokerDispatcher(make_broker(settings), settings.queue_name)
    enroll(runtime)
    assert dispatch_due(runtime, dispatcher) == 1
    send_id = welcome(runtime).id

    blocker = make_engine(settings.database_url).connect()
    transaction = blocker.begin()
    blocker.execute(
        text("SELECT id FROM scheduled_send WHERE id = :id FOR UPDATE"), {"id": send_id}
    )
    victim = start_worker()
    wait_for(lambda: _waiting_on_lock(runtime), timeout=30)  # the worker has the message, blocked
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    transaction.rollback()
    blocker.close()
    assert welcome(runtime).state == "dispatched"

    start_worker()
    wait_for(lambda: datetime.now(UTC) > welcome(runtime).wake_at)
    # The killed worker's backend ran its UPDATE once the lock was released and holds the row
    # until it notices its client is gone (a moment on a loaded machine): the claim skips a
    # locked row, so it is tried again until that backend has rolled back.
    wait_for(lambda: dispatch_due(runtime, dispatcher) == 1)
    wait_for(lambda: welcome(runtime).state == "sent")
    time.sleep(1)
    row = welcome(runtime)
    assert (row.dispatches, len(outbox_files(settings))) == (2, 1)


def _waiting_on_lock(runtime: Runtime) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'UPDATE scheduled_send%'"
    )
    with runtime.engine.connect() as connection:
        return bool(connection.execute(query).scalar())
