"""A worker process asked to stop tells its send path (:mod:`orchestrator.delivery.stopping`):
Dramatiq calls the middleware's ``before_worker_shutdown`` on SIGTERM, before it waits for the
batches in hand."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.delivery import stopping
from orchestrator.processes.worker import WorkerLifecycle


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """The stop is for a process's life: undone after the test, as a new process starts."""
    stopping._ASKED.clear()
    yield
    stopping._ASKED.clear()


def test_the_worker_s_shutdown_asks_its_send_path_to_stop(fresh_process: None) -> None:
    nothing: Any = None
    worker: Any = SimpleNamespace(workers=())
    assert not stopping.stop_asked()
    WorkerLifecycle().after_worker_boot(nothing, worker)
    assert not stopping.stop_asked()
    WorkerLifecycle().before_worker_shutdown(nothing, worker)
    assert stopping.stop_asked()
