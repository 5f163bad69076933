"""The scheduler's probe and the metrics server: ``/healthz`` turns 503 once the loop has not
finished a tick for too long (a database that stopped answering, say), the metrics port
answers ``/metrics`` and nothing else, and the gauges read at scrape time are cached and left
out (not made up) when their read fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.observability.exposition import ScrapeTimeGauges, render, start_metrics_server
from orchestrator.processes.scheduler import Heartbeat, run_scheduler
from orchestrator.runtime import Runtime, build_runtime
from tests.support.environment import make_settings


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class NoDispatch:
    def dispatch(self, send_ids: Sequence[int]) -> None:
        raise AssertionError("nothing is due")


def one_tick(runtime: Runtime, heartbeat: Heartbeat) -> None:
    """Run the real loop for exactly one tick (its periodic job stops it)."""
    stop = threading.Event()

    def stop_after_the_tick(now: datetime) -> None:
        stop.set()

    run_scheduler(runtime, NoDispatch(), stop, [stop_after_the_tick], heartbeat)


@pytest.fixture
def broken_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose database stopped answering after it started (a runtime starts on a
    database: it brings the journeys' versions up to date)."""
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    upgrade(url)
    runtime = build_runtime(make_settings(tmp_path, url))
    runtime.engine.dispose()
    runtime.engine = make_engine("postgresql://nobody:x@127.0.0.1:9/none")  # nothing listens
    yield runtime
    runtime.close()


def test_a_tick_beats_and_a_failing_one_does_not(tmp_path: Path, broken_runtime: Runtime) -> None:
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    upgrade(url)
    working = build_runtime(make_settings(tmp_path, url))
    monotonic = Monotonic()
    heartbeat = Heartbeat(max_age=30, monotonic=monotonic)
    try:
        monotonic.now = 100
        one_tick(working, heartbeat)
        assert heartbeat.check() == (True, "ok")
        monotonic.now = 120
        one_tick(broken_runtime, heartbeat)  # the database does not answer: no beat
        assert heartbeat.check() == (True, "ok")  # 20 s: still within the limit
        monotonic.now = 131
        one_tick(broken_runtime, heartbeat)
        assert heartbeat.check() == (False, "scheduler loop: no tick for 31s")
    finally:
        working.close()


def test_the_metrics_port_answers_healthz_from_its_check_and_metrics() -> None:
    state = {"ok": True}

    def check() -> tuple[bool, str]:
        return (True, "ok") if state["ok"] else (False, "scheduler loop: no tick for 99s")

    registry = CollectorRegistry()
    server = start_metrics_server("127.0.0.1", 0, registry=registry, health=check)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert httpx.get(f"{base}/healthz").status_code == 200
        state["ok"] = False
        down = httpx.get(f"{base}/healthz")
        assert down.status_code == 503 and down.text == "scheduler loop: no tick for 99s\n"
        assert httpx.get(f"{base}/metrics").status_code == 200
        assert httpx.get(f"{base}/elsewhere").status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_scrape_time_gauges_are_cached_and_absent_when_unreadable() -> None:
    monotonic = Monotonic()
    reads = {"count": 0, "fail": False}

    def read() -> dict[str, float]:
        reads["count"] += 1
        if reads["fail"]:
            raise ConnectionError("database unreachable")
        return {"stepmail_due_sends": 3.0}

    gauges = ScrapeTimeGauges(read, ttl=5, monotonic=monotonic)
    registry = CollectorRegistry()
    assert b"stepmail_due_sends 3.0" in render(registry, gauges)
    assert b"stepmail_due_sends 3.0" in render(registry, gauges)
    assert reads["count"] == 1  # the second scrape came within the ttl
    reads["fail"] = True
    monotonic.now = 6
    assert b"stepmail_due_sends" not in render(registry, gauges)
