"""A worker process asked to stop tells its send path (:mod:`orchestrator.delivery.stopping`):
Dramatiq calls the middleware's ``before_worker_shutdown`` on SIGTERM, before it waits for the
batches in hand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

import orchestrator.processes.worker as worker_module
from orchestrator.delivery import stopping
from orchestrator.processes.worker import WorkerLifecycle


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """The stop is for a process's life: undone after the test, as a new process starts."""
    stopping._ASKED.clear()
    yield
    stopping._ASKED.clear()


class Unconnected:
    """A runtime without a database: it opens no connection."""

    def open_connections(self, count: int) -> int:
        return 0


def test_the_worker_s_shutdown_asks_its_send_path_to_stop(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "current_runtime", lambda: Unconnected())
    nothing: Any = None
    worker: Any = SimpleNamespace(workers=())
    assert not stopping.stop_asked()
    WorkerLifecycle().after_worker_boot(nothing, worker)
    assert not stopping.stop_asked()
    WorkerLifecycle().before_worker_shutdown(nothing, worker)
    assert stopping.stop_asked()


def test_a_worker_builds_its_runtime_as_it_boots(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built (and its templates compiled) before the first message, not by it."""
    built: list[bool] = []

    def build() -> Unconnected:
        built.append(True)
        return Unconnected()

    monkeypatch.setattr(worker_module, "current_runtime", build)
    nothing: Any = None
    worker: Any = SimpleNamespace(workers=())
    WorkerLifecycle().after_worker_boot(nothing, worker)
    assert built == [True]


def test_a_runtime_that_cannot_be_built_at_boot_is_left_to_the_first_message(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def database_down() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(worker_module, "current_runtime", database_down)
    caplog.set_level(logging.INFO, logger=worker_module.__name__)
    nothing: Any = None
    worker: Any = SimpleNamespace(workers=())
    WorkerLifecycle().after_worker_boot(nothing, worker)
    assert "not ready to send yet (connection refused)" in caplog.text
    assert "ready (0 threads)" in caplog.text


def started_worker(broker: StubBroker, **options: Any) -> dramatiq.Worker:
    broker.add_middleware(WorkerLifecycle())
    broker.declare_queue("sends")
    worker = dramatiq.Worker(broker, worker_threads=2, **options)
    worker.start()
    return worker


def test_an_idle_worker_looks_at_its_queue_ten_times_a_second(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Dramatiq's up to a second: a burst's first mails waited that long while the cores
    stood idle."""
    monkeypatch.setattr(worker_module, "current_runtime", lambda: Unconnected())
    monkeypatch.delenv(worker_module.WORKER_TIMEOUT_ENV, raising=False)
    worker = started_worker(StubBroker())
    try:
        assert worker.consumers["sends"].worker_timeout == worker_module.IDLE_POLL_MS == 100
        assert [thread.timeout for thread in worker.workers] == [0.1, 0.1]  # seconds
    finally:
        worker.stop()


def test_an_operator_s_own_worker_timeout_stands(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "current_runtime", lambda: Unconnected())
    monkeypatch.setenv(worker_module.WORKER_TIMEOUT_ENV, "250")
    worker = started_worker(StubBroker(), worker_timeout=250)
    try:
        assert worker.consumers["sends"].worker_timeout == 250
    finally:
        worker.stop()
