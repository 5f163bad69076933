"""A worker process opens the connections its threads hold at once as it boots
(:func:`orchestrator.db.engine.open_pooled`): they wait in the pool, open, for the first
batches, and never more than the pool keeps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

import orchestrator.processes.worker as worker_module
from orchestrator.db.engine import make_engine, open_pooled
from orchestrator.processes.worker import CONNECTIONS_A_THREAD, WorkerLifecycle
from tests.support.environment import require_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    url = (
        f"sqlite:///{tmp_path / 'pool.db'}"
        if request.param == "sqlite"
        else require_server("STEPMAIL_TEST_POSTGRES_URL")
    )
    made = make_engine(url, pool_size=5, max_overflow=10)
    request.addfinalizer(made.dispose)
    return made


def opened(engine: Engine) -> int:
    """Connections waiting in the pool, open."""
    pool: Any = engine.pool
    return int(pool.checkedin())


def test_the_connections_asked_for_wait_in_the_pool_open(engine: Engine) -> None:
    assert opened(engine) == 0
    assert open_pooled(engine, 3) == 3
    assert opened(engine) == 3
    with engine.connect() as connection:  # the next transaction takes one of them
        assert opened(engine) == 2
        connection.exec_driver_sql("SELECT 1")
    assert opened(engine) == 3


def test_never_more_than_the_pool_keeps(engine: Engine) -> None:
    assert open_pooled(engine, 50) == 5
    assert opened(engine) == 5


def test_a_pool_that_keeps_none_opens_none() -> None:
    memory = make_engine("sqlite://")  # one connection per thread, not a queue of them
    assert open_pooled(memory, 4) == 0


def test_a_booting_worker_opens_what_its_threads_hold_at_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime: Any = SimpleNamespace(open_connections=lambda count: open_pooled(engine, count))
    monkeypatch.setattr(worker_module, "current_runtime", lambda: runtime)
    nothing: Any = None
    two_threads: Any = SimpleNamespace(workers=(object(), object()))
    WorkerLifecycle().after_worker_boot(nothing, two_threads)
    assert opened(engine) == 2 * CONNECTIONS_A_THREAD
