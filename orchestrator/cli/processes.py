"""``stepmail run``, ``api``, ``scheduler`` and ``worker``: the serving processes."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from orchestrator.errors import ConfigurationError
from orchestrator.observability.multiprocess import MULTIPROC_ENV
from orchestrator.settings import Settings, load_settings


def run() -> None:
    """All in one: migrate, then API, scheduler and an in-process worker (embedded defaults)."""
    from orchestrator.processes.serve import run_all_in_one

    run_all_in_one(_logging_from(load_settings()))


def api(
    workers: Annotated[
        int, typer.Option(help="API processes sharing the port (uvicorn workers)", min=1, max=64)
    ] = 1,
) -> None:
    """Serve the HTTP API only (scale it separately from schedulers and workers)."""
    from orchestrator.processes.serve import run_api

    run_api(_logging_from(load_settings()), workers=workers)


def scheduler() -> None:
    """Run the scheduler loop: claim due rows and hand them to Redis. Needs STEPMAIL_REDIS_URL."""
    from orchestrator.processes.serve import run_scheduler_process

    run_scheduler_process(_logging_from(load_settings()))


def _logging_from(settings: Settings) -> Settings:
    """The process's one logging set-up (STEPMAIL_LOG_LEVEL, STEPMAIL_LOG_FORMAT, secrets
    redacted, floods held back; processes/log_hygiene), for every component of this process."""
    from orchestrator.processes.log_hygiene import configure_process_logging

    configure_process_logging(settings)
    return settings


def worker(
    processes: Annotated[int, typer.Option(help="worker processes", min=1, max=64)] = 1,
    threads: Annotated[
        int | None,
        typer.Option(help="threads per process [default: STEPMAIL_WORKER_THREADS]", min=1, max=256),
    ] = None,
) -> None:
    """Run Dramatiq workers (same as ``dramatiq workers``). Needs STEPMAIL_REDIS_URL."""
    from orchestrator.startup.gate import check_before_serving, log_development_defaults

    settings = load_settings()
    threads = threads or settings.worker_threads
    if not settings.redis_url:
        raise ConfigurationError(
            "STEPMAIL_REDIS_URL is not set; use `stepmail run` for embedded mode"
        )
    from orchestrator.processes.worker_metrics import prepare_metrics_dir

    _logging_from(settings)
    log_development_defaults(check_before_serving(settings))
    os.environ[MULTIPROC_ENV] = str(prepare_metrics_dir(settings.metrics_dir))
    argv = [sys.executable, "-m", "orchestrator.processes.worker"]
    argv += ["--processes", str(processes), "--threads", str(threads)]
    # Replace this process with Dramatiq's CLI, under our logging (processes/worker.py).
    os.execv(sys.executable, argv)  # noqa: S606
