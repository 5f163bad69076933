"""Exposing metrics: the registry a process scrapes, the gauges read from the database at
scrape time, and the small HTTP server of scheduler and worker processes.

Multi-process safety. ``dramatiq workers`` forks worker processes, so an in-memory registry
per process would be seen by nobody (one port, N processes). ``stepmail worker`` therefore sets
``PROMETHEUS_MULTIPROC_DIR`` (``STEPMAIL_METRICS_DIR``, else a fresh temporary folder, emptied
at start) before Dramatiq starts: each worker process writes its counters and histograms to
memory-mapped files there, and the one metrics server (a Dramatiq fork process) adds them up
with prometheus_client's ``MultiProcessCollector``. The API and the scheduler are one process
each and keep the ordinary in-memory registry (with process metrics), unless the operator set
``PROMETHEUS_MULTIPROC_DIR`` for them too, which then works the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from orchestrator.observability.metrics import SCRAPE_TIME_GAUGES
from orchestrator.observability.multiprocess import MULTIPROC_ENV

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def base_registry() -> CollectorRegistry:
    """The counters and histograms of this process, or of every process sharing the folder."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry


class ScrapeTimeGauges(Collector):
    """Gauges read from the database when Prometheus scrapes, kept for ``ttl`` seconds so a
    burst of scrapes (several Prometheus servers, a dashboard) costs one query. ``read``
    returns ``{name: value}`` for names of :data:`SCRAPE_TIME_GAUGES`; a failing read is
    logged and the gauges are left out of that scrape (absent, not a stale or made-up 0)."""

    def __init__(
        self,
        read: Callable[[], Mapping[str, float]],
        ttl: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._ttl, self._monotonic = read, ttl, monotonic
        self._lock = threading.Lock()
        self._cached: Mapping[str, float] | None = None
        self._read_at = float("-inf")

    def collect(self) -> Iterable[Metric]:
        values = self._values()
        for name, value in values.items():
            gauge = GaugeMetricFamily(name, SCRAPE_TIME_GAUGES.get(name, name))
            gauge.add_metric([], value)
            yield gauge

    def _values(self) -> Mapping[str, float]:
        with self._lock:
            now = self._monotonic()
            if self._cached is None or now - self._read_at >= self._ttl:
                try:
                    self._cached = dict(self._read())
                except Exception as exc:
                    log.warning("scrape-time gauges unavailable: %s", exc)
                    self._cached = {}
                self._read_at = now
            return self._cached


def render(registry: CollectorRegistry, extra: Collector | None = None) -> bytes:
    """The text exposition of ``registry`` followed by ``extra``'s gauges."""
    body = generate_latest(registry)
    if extra is not None:
        scrape_time = CollectorRegistry(auto_describe=False)
        scrape_time.register(extra)
        body += generate_latest(scrape_time)
    return body


HealthCheck = Callable[[], tuple[bool, str]]


def start_metrics_server(
    host: str,
    port: int,
    *,
    registry: CollectorRegistry | None = None,
    extra: Collector | None = None,
    health: HealthCheck | None = None,
) -> ThreadingHTTPServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` in a daemon thread (scheduler, worker).
    ``health`` says whether the process is doing its job (the scheduler: its loop ticked
    lately); without one, answering at all is the proof of life."""
    server = _make_server(host, port, registry or base_registry(), extra, health)
    threading.Thread(target=server.serve_forever, name="stepmail-metrics", daemon=True).start()
    log.info("metrics and /healthz on http://%s:%d", host, server.server_address[1])
    return server


def serve_metrics_forever(
    host: str, port: int, *, extra: Collector | None = None, health: HealthCheck | None = None
) -> None:
    """The same server in the foreground (a Dramatiq fork process)."""
    server = _make_server(host, port, base_registry(), extra, health)
    log.info("metrics and /healthz on http://%s:%d", host, server.server_address[1])
    server.serve_forever()


def _make_server(
    host: str,
    port: int,
    registry: CollectorRegistry,
    extra: Collector | None,
    health: HealthCheck | None,
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, render(registry, extra), CONTENT_TYPE)
            elif path == "/healthz":
                ok, detail = health() if health is not None else (True, "ok")
                self._answer(200 if ok else 503, detail.encode() + b"\n", "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
