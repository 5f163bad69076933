"""Long-running processes: the all-in-one embedded service, the API, the scheduler.

Each checks its settings first (:mod:`orchestrator.startup`): a production process refuses
development defaults, and a missing folder or unreachable server stops it with one line.
"""

from __future__ import annotations

import logging

import dramatiq
import uvicorn
from fastapi import FastAPI

from orchestrator.api.access_log import uvicorn_log_config
from orchestrator.api.app import create_app
from orchestrator.errors import ConfigurationError
from orchestrator.processes.actors import register_actors
from orchestrator.processes.scheduler import start_scheduler_thread
from orchestrator.runtime import build_runtime, install_runtime
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

WORKER_HEALTHCHECK_TIMEOUT = 60  # seconds without an answer before an API worker is replaced


def run_all_in_one(settings: Settings) -> None:
    """``stepmail run``: everything in this process, so one command gives a working service."""
    defaults = check_before_serving(settings, migrates_itself=True)
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
        _serve(create_app(runtime), settings)
    finally:
        stop.set()
        worker.stop()
        runtime.close()


def run_api(settings: Settings, workers: int = 1) -> None:
    """``stepmail api [--workers N]``. The checks run once, here, before any worker starts.

    With N > 1, uvicorn's supervisor starts N processes on one listening socket; each reads
    its settings from the same environment and builds its own runtime (engine, pool,
    journeys) in :func:`api_app`. A key this process would make for itself (the unsubscribe
    and console keys when no secret is set: development only) is made once here and handed to
    every worker, so a link or a console cookie made by one is good in all.
    """
    log_development_defaults(check_before_serving(settings))
    if workers == 1:
        _serve(create_app(build_runtime(settings)), settings)
        return
    share_process_key()
    _serve(f"{__name__}:api_app", settings, workers=workers)


def api_app() -> FastAPI:
    """The app of one ``stepmail api --workers N`` process (a uvicorn factory): the parent
    already checked the settings and the database, so this only builds the runtime."""
    runtime = build_runtime(load_settings())
    app = create_app(runtime)
    app.router.on_shutdown.append(runtime.close)
    return app


def _serve(app: FastAPI | str, settings: Settings, *, workers: int = 1) -> None:
    """uvicorn, its access log keeping unsubscribe tokens out (api/access_log.py)."""
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=uvicorn_log_config(),
        factory=isinstance(app, str),
        workers=workers if workers > 1 else None,
        # The supervisor kills (and replaces) a worker that does not answer its ping in time,
        # dropping the requests in flight. Its 5 s default did that to healthy workers on a
        # loaded 2-core machine while they parsed 1,000-event batches: only a stuck one goes.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
    )


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
