"""The scheduler process's loop: tick every ``STEPMAIL_DISPATCH_INTERVAL``, offer periodic jobs
the time once a minute. Used by ``stepmail scheduler`` and by ``stepmail run`` (a thread)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.scheduling.broker import Dispatcher
from orchestrator.services.scheduling import tick

log = logging.getLogger(__name__)

PERIODIC_EVERY = timedelta(minutes=1)


def run_scheduler(
    engine: Engine,
    dispatcher: Dispatcher,
    clock_now: Callable[[], datetime],
    interval: float,
    batch_size: int,
    lease: timedelta,
    stop: threading.Event,
    periodic: Sequence[Callable[[datetime], object]] = (),
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set; a failed tick is logged, not fatal.

    ``periodic`` jobs are offered the time once a minute; each decides whether it is due (see
    :mod:`orchestrator.scheduling.periodic`), so the tick itself stays what is due and nothing
    else.
    """
    log.info("scheduler started (interval %.1fs, batch %d)", interval, batch_size)
    next_periodic = clock_now()
    while not stop.is_set():
        try:
            count = tick(engine, dispatcher, clock_now(), batch_size, lease)
            if count:
                log.info("dispatched %d due sends", count)
        except Exception:
            log.exception("scheduler tick failed; retrying next interval")
        if periodic and clock_now() >= next_periodic:
            next_periodic = clock_now() + PERIODIC_EVERY
            _run_periodic(periodic, clock_now())
        stop.wait(interval)
    log.info("scheduler stopped")


def _run_periodic(jobs: Sequence[Callable[[datetime], object]], now: datetime) -> None:
    for job in jobs:
        try:
            job(now)
        except Exception:
            log.exception("periodic job failed; it is offered again in a minute")
