"""A worker group's metrics: the folder its processes write their counters to, and the one
server that reads them all (``/metrics``, ``/healthz``).

The server runs in a process of its own, which Dramatiq forks from its main process once the
worker processes are ready: it imports the module that holds the function it runs. This module
imports only what serving metrics needs (the fork took ~0.3 s of CPU in all); the worker
module it lived in imported the whole send path (~1.1 s more), taken from the worker
processes' cores as they took their first messages (bench/README, "Session 22").
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from orchestrator.observability.multiprocess import use_group_metrics_dir

log = logging.getLogger(__name__)


def serve_worker_metrics() -> int:
    """The group's ``/metrics`` (every worker process's counters, from the shared folder) and
    ``/healthz`` (answering means the group runs: Dramatiq stops every process when one of its
    worker processes dies)."""
    from orchestrator.observability.exposition import serve_metrics_forever
    from orchestrator.settings import get_settings

    settings = get_settings()
    if not settings.worker_metrics_port:
        return 0
    use_group_metrics_dir()
    try:
        serve_metrics_forever(settings.metrics_host, settings.worker_metrics_port)
    except OSError as exc:
        log.error(
            "worker metrics: cannot listen on %s:%d (%s); STEPMAIL_WORKER_METRICS_PORT=0 turns "
            "them off",
            settings.metrics_host,
            settings.worker_metrics_port,
            exc.strerror,
        )
        return 1
    return 0


def prepare_metrics_dir(configured: Path | None) -> Path:
    """A folder for this group's metric files with none of a previous run's (they would add
    its counts to ours): the configured one, its ``*.db`` metric files removed and nothing
    else touched (it may be a folder the operator keeps other things in), else a fresh
    temporary one."""
    if configured is None:
        return Path(tempfile.mkdtemp(prefix="stepmail-metrics-"))
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink(missing_ok=True)
    return configured
