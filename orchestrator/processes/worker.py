"""What a ``dramatiq workers`` process group adds to Dramatiq for operators: our log format,
a line when a worker process stops and what it finished, and one metrics server for the group.

``stepmail worker`` runs :func:`main` (``python -m orchestrator.processes.worker``): it
configures logging, points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder (see
:mod:`orchestrator.observability.exposition` for why) and hands over to Dramatiq's own command
line. Each worker process imports :mod:`workers`, which installs :class:`WorkerLifecycle`;
its ``forks`` make Dramatiq start
:func:`~orchestrator.processes.worker_metrics.serve_worker_metrics` once for the group, on
``STEPMAIL_WORKER_METRICS_PORT``.

On SIGTERM Dramatiq stops taking messages, gives prefetched ones back to Redis, and waits for
each worker thread's message in hand (within ``--worker-shutdown-timeout``). The middleware
asks the send path to stop too (:mod:`orchestrator.delivery.stopping`): a thread finishes the
window of mails it is sending and hands the rest of its batch back, due at once, so a stop
lasts one window, not one batch. The rows of a batch cut short by a harder kill come back
through their lease.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

import dramatiq
from dramatiq.middleware import Middleware

from orchestrator.delivery.stopping import ask_to_stop
from orchestrator.observability.multiprocess import MULTIPROC_ENV
from orchestrator.processes.worker_metrics import serve_worker_metrics
from orchestrator.runtime import current_runtime

log = logging.getLogger(__name__)

# A batch holds its hand-over connection while its other transactions take one more
# (orchestrator.delivery.hand_over).
CONNECTIONS_A_THREAD = 2
# How soon an idle worker looks at its queue again (Dramatiq's default: up to 1,000 ms). The
# price is paid while idle: a group of 2 processes × 4 threads took 38 ms of CPU a second
# idle, against 5.5 ms with Dramatiq's default (19 ms with 250; bench/README, "Session 22").
IDLE_POLL_MS = 100
WORKER_TIMEOUT_ENV = "dramatiq_worker_timeout"


class WorkerLifecycle(Middleware):
    """Log lines at a worker process's start and stop; the group's metrics server."""

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_worker_metrics]

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """An idle queue is looked at again within :data:`IDLE_POLL_MS`, unless the operator
        set Dramatiq's own ``dramatiq_worker_timeout``. Dramatiq's default lets an idle
        worker back off to between half a second and a second, so the first mails of a burst
        waited that long for a worker while the cores stood idle (bench/README, "Session
        22"). Read by the consumer and worker threads Dramatiq starts after this hook."""
        if os.environ.get(WORKER_TIMEOUT_ENV) is None:
            worker.worker_timeout = IDLE_POLL_MS

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Build the runtime now (its templates compiled) and open the database connections
        its threads hold at once (a batch's transaction and its hand-over connection), not on
        the first messages: the first batches after a deploy would pay for them. If it cannot
        be built yet (the database is not up), the first message tries again, as before."""
        try:
            current_runtime().open_connections(CONNECTIONS_A_THREAD * len(worker.workers))
        except Exception as exc:
            log.warning(
                "worker process %d: not ready to send yet (%s); its first message tries again",
                os.getpid(),
                exc,
            )
        log.info("worker process %d ready (%d threads)", os.getpid(), len(worker.workers))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        ask_to_stop()
        log.info(
            "worker process %d stopping: no new messages; finishing the windows in hand and "
            "handing the rest of each batch back",
            os.getpid(),
        )

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        log.info(
            "worker process %d stopped cleanly: every batch in hand finished or handed back",
            os.getpid(),
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Dramatiq's command line with our logging (``stepmail worker`` execs this)."""
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from orchestrator.processes.log_hygiene import configure_process_logging
    from orchestrator.settings import get_settings

    settings = get_settings()
    configure_process_logging(settings)
    parser = make_argument_parser()  # type: ignore[no-untyped-call]
    args = parser.parse_args(["workers", "--skip-logging", *(argv or [])])
    if MULTIPROC_ENV not in os.environ:
        log.warning("%s is not set: worker metrics stay per process", MULTIPROC_ENV)
    result: int = dramatiq_main(args)  # type: ignore[no-untyped-call]
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
