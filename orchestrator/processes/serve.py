"""Long-running processes: the all-in-one embedded service, the API, the scheduler.

Each checks its settings first (:mod:`orchestrator.startup`): a production process refuses
development defaults, and a missing folder or unreachable server stops it with one line.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import dramatiq
from fastapi import FastAPI

from orchestrator.api.app import create_app
from orchestrator.errors import ConfigurationError
from orchestrator.observability.exposition import start_metrics_server
from orchestrator.processes.actors import register_actors
from orchestrator.processes.http_server import (
    bind,
    ensure_descriptors,
    quiet_uvicorn_access_log,
    serve,
    serve_workers,
)
from orchestrator.processes.scheduler import Heartbeat, scheduler_jobs, start_scheduler_thread
from orchestrator.processes.webhook_loop import start_webhook_loop
from orchestrator.runtime import (
    build_runtime,
    install_runtime,
    ready_to_serve,
    settle_heap_for_serving,
)
from orchestrator.scheduling.broker import make_broker
from orchestrator.services.admin import upgrade_database
from orchestrator.settings import Settings, load_settings, share_process_key
from orchestrator.startup.development_defaults import DevelopmentDefault
from orchestrator.startup.gate import (
    check_before_serving,
    development_warning,
    log_development_defaults,
)

log = logging.getLogger(__name__)
# How many processes ``stepmail api --workers N`` started, handed to each in its environment.
API_PROCESSES_VARIABLE = "_STEPMAIL_API_PROCESSES"


def run_all_in_one(settings: Settings) -> None:
    """``stepmail run``: everything in this process, so one command gives a working service."""
    defaults = check_before_serving(settings, migrates_itself=True, serves_http=True)
    ensure_descriptors(settings)
    sock = bind(settings)  # an address in use stops us before anything starts
    upgrade_database(settings.database_url)
    runtime = build_runtime(settings)
    install_runtime(runtime)
    broker = make_broker(settings)
    register_actors(broker, settings.queue_name)
    ready_to_serve(runtime)
    worker = dramatiq.Worker(broker, worker_threads=settings.worker_threads)
    worker.start()
    stop = start_scheduler_thread(runtime, broker)
    webhooks = start_webhook_loop(runtime, stop)
    _print_banner(settings, defaults)
    try:
        serve(create_app(runtime), settings, sock)
    finally:
        stop.set()
        webhooks.join(timeout=settings.webhook_timeout + 5)
        worker.stop()
        runtime.close()


def run_api(settings: Settings, workers: int = 1) -> None:
    """``stepmail api [--workers N]``. The checks run and the socket is bound once, here,
    before any worker starts (an address in use is one line, not N tracebacks).

    With N > 1, uvicorn's supervisor starts N processes serving that socket; each reads its
    settings from the same environment and builds its own runtime (engine, pool, journeys) in
    :func:`api_app`, under the same bounds (processes/http_server.py). A key this process
    would make for itself (the unsubscribe and console keys when no secret is set:
    development only) is made once here and handed to every worker, so a link or a console
    cookie made by one is good in all.
    """
    log_development_defaults(check_before_serving(settings, serves_http=True))
    ensure_descriptors(settings)  # a spawned worker inherits the raised limit
    sock = bind(settings)
    if workers == 1:
        runtime = build_runtime(settings)
        app = create_app(runtime)
        ready_to_serve(runtime)
        serve(app, settings, sock)
        return
    share_process_key()
    os.environ[API_PROCESSES_VARIABLE] = str(workers)  # each worker's share of the batch slots
    serve_workers(f"{__name__}:api_app", settings, sock, workers)


def api_app() -> FastAPI:
    """The app of one ``stepmail api --workers N`` process (a uvicorn factory): the parent
    already checked the settings and the database, so this sets up the process's logging
    (a spawned interpreter starts without it) and builds the runtime."""
    from orchestrator.processes.log_hygiene import configure_process_logging

    settings = load_settings()
    configure_process_logging(settings)
    quiet_uvicorn_access_log()  # set up again: uvicorn's, done before this, is undone
    runtime = build_runtime(settings)
    app = create_app(runtime, processes=int(os.environ.get(API_PROCESSES_VARIABLE, "1")))
    app.router.on_shutdown.append(runtime.close)
    ready_to_serve(runtime)
    return app


def run_scheduler_process(settings: Settings) -> None:
    """``stepmail scheduler``: the tick loop in the main thread, stopped by SIGTERM or Ctrl-C
    after the tick in hand (its claimed rows are dispatched, none left half-claimed)."""
    if not settings.redis_url:
        raise ConfigurationError("STEPMAIL_REDIS_URL is required for a separate scheduler")
    log_development_defaults(check_before_serving(settings))
    runtime = build_runtime(settings)
    broker = make_broker(settings)
    settle_heap_for_serving()
    stop = threading.Event()
    heartbeat = Heartbeat(max_age=max(30.0, 10 * settings.dispatch_interval))
    _stop_on_signals(stop)
    if settings.scheduler_metrics_port:
        try:
            start_metrics_server(
                settings.metrics_host,
                settings.scheduler_metrics_port,
                extra=runtime.scrape_time_gauges(),
                health=heartbeat.check,
            )
        except OSError as exc:
            runtime.close()
            raise ConfigurationError(
                f"STEPMAIL_SCHEDULER_METRICS_PORT: cannot listen on {settings.metrics_host}:"
                f"{settings.scheduler_metrics_port} ({exc.strerror}); give each scheduler on a "
                "host its own port, or 0 to turn the port off"
            ) from None
    webhooks = start_webhook_loop(runtime, stop)
    try:
        scheduler_jobs(runtime, broker, stop, heartbeat)
    finally:
        stop.set()
        webhooks.join(timeout=settings.webhook_timeout + 5)
        runtime.close()


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info(
                "%s received: finishing the tick in hand, then stopping",
                signal.Signals(signum).name,
            )
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _print_banner(settings: Settings, defaults: list[DevelopmentDefault]) -> None:
    url = f"http://{settings.host}:{settings.port}"
    warning = development_warning(defaults) if settings.is_development else ""
    print(
        f"\n{warning}\n"
        f"  Stepmail is running at {url}  (API docs: {url}/docs)\n"
        f"  Outbox: {settings.outbox_dir.resolve()}\n"
        f"  Send a test signup:  make signup   (or see README.md, 'Try it')\n",
        flush=True,
    )
