"""``stepmail run``, ``api``, ``scheduler`` and ``worker``: the serving processes."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from orchestrator.cli.output import configure_logging
from orchestrator.errors import ConfigurationError
from orchestrator.settings import load_settings


def run() -> None:
    """All in one: migrate, then API, scheduler and an in-process worker (embedded defaults)."""
    from orchestrator.processes.serve import run_all_in_one

    configure_logging()
    run_all_in_one(load_settings())


def api(
    workers: Annotated[
        int, typer.Option(help="API processes sharing the port (uvicorn workers)", min=1)
    ] = 1,
) -> None:
    """Serve the HTTP API only (scale it separately from schedulers and workers)."""
    from orchestrator.processes.serve import run_api

    configure_logging()
    run_api(load_settings(), workers=workers)


def scheduler() -> None:
    """Run the scheduler loop: claim due rows and hand them to Redis. Needs STEPMAIL_REDIS_URL."""
    from orchestrator.processes.serve import run_scheduler_process

    configure_logging()
    run_scheduler_process(load_settings())


def worker(
    processes: Annotated[int, typer.Option(help="worker processes", min=1)] = 1,
    threads: Annotated[
        int | None,
        typer.Option(help="threads per process [default: STEPMAIL_WORKER_THREADS]", min=1),
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
    configure_logging()
    log_development_defaults(check_before_serving(settings))
    argv = [sys.executable, "-m", "dramatiq", "workers"]
    argv += ["--processes", str(processes), "--threads", str(threads)]
    os.execv(sys.executable, argv)  # noqa: S606  (replace this process with Dramatiq's CLI)
