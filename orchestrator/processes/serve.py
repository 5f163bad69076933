"""Long-running processes: the all-in-one embedded service, the API, the scheduler.

Each checks its settings first (:mod:`orchestrator.startup`): a production process refuses
development defaults, and a missing folder or unreachable server stops it with one line.
"""

from __future__ import annotations

import logging

import dramatiq

from orchestrator.api.app import create_app
from orchestrator.errors import ConfigurationError
from orchestrator.processes.actors import register_actors
from orchestrator.processes.http_server import bind, ensure_descriptors, serve
from orchestrator.processes.scheduler import start_scheduler_thread
from orchestrator.runtime import build_runtime, install_runtime
from orchestrator.scheduling.broker import make_broker
from orchestrator.services.admin import upgrade_database
from orchestrator.settings import Settings
from orchestrator.startup.development_defaults import DevelopmentDefault
from orchestrator.startup.gate import (
    check_before_serving,
    development_warning,
    log_development_defaults,
)

log = logging.getLogger(__name__)


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
    worker = dramatiq.Worker(broker, worker_threads=settings.worker_threads)
    worker.start()
    stop = start_scheduler_thread(runtime, broker)
    _print_banner(settings, defaults)
    try:
        serve(create_app(runtime), settings, sock)
    finally:
        stop.set()
        worker.stop()
        runtime.close()


def run_api(settings: Settings) -> None:
    log_development_defaults(check_before_serving(settings, serves_http=True))
    ensure_descriptors(settings)
    sock = bind(settings)
    runtime = build_runtime(settings)
    serve(create_app(runtime), settings, sock)


def run_scheduler_process(settings: Settings) -> None:
    if not settings.redis_url:
        raise ConfigurationError("STEPMAIL_REDIS_URL is required for a separate scheduler")
    log_development_defaults(check_before_serving(settings))
    runtime = build_runtime(settings)
    broker = make_broker(settings)
    stop = start_scheduler_thread(runtime, broker)
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        stop.set()


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
