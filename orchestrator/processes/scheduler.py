"""The scheduler process's loop: tick every ``STEPMAIL_DISPATCH_INTERVAL``, offer periodic jobs
the time once a minute. ``stepmail scheduler`` runs it; ``stepmail run`` runs it in a thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dramatiq

from orchestrator.runtime import Runtime
from orchestrator.scheduling.broker import BrokerDispatcher, Dispatcher
from orchestrator.services.health import run_daily_if_due
from orchestrator.services.scheduling import tick

log = logging.getLogger(__name__)

PERIODIC_EVERY = timedelta(minutes=1)
PeriodicJob = Callable[[datetime], object]


def start_scheduler_thread(runtime: Runtime, broker: dramatiq.Broker) -> threading.Event:
    """Tick in a daemon thread, the daily health job among the periodic ones; set the returned
    event to stop it."""
    settings = runtime.settings
    stop = threading.Event()

    def health_daily(now: datetime) -> object:
        rules = runtime.usage_rules()
        return run_daily_if_due(runtime.engine, rules=rules, now=now, notify=runtime.notify_now)

    dispatcher = BrokerDispatcher(broker, settings.queue_name, settings.dispatch_message_size)
    thread = threading.Thread(
        target=run_scheduler,
        name="stepmail-scheduler",
        daemon=True,
        args=(runtime, dispatcher, stop, [health_daily]),
    )
    thread.start()
    return stop


def run_scheduler(
    runtime: Runtime,
    dispatcher: Dispatcher,
    stop: threading.Event,
    periodic: Sequence[PeriodicJob] = (),
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set; a failed tick is logged, not fatal.

    ``periodic`` jobs are offered the time once a minute; each decides whether it is due (see
    :mod:`orchestrator.scheduling.periodic`), so the tick itself stays what is due and nothing
    else.
    """
    settings, clock = runtime.settings, runtime.clock
    interval, batch_size = settings.dispatch_interval, settings.dispatch_batch_size
    lease = timedelta(seconds=settings.send_lease)
    log.info("scheduler started (interval %.1fs, batch %d)", interval, batch_size)
    next_periodic = clock.now()
    while not stop.is_set():
        try:
            count = tick(runtime.engine, dispatcher, clock.now(), batch_size, lease)
            if count:
                log.info("dispatched %d due sends", count)
        except Exception:
            log.exception("scheduler tick failed; retrying next interval")
        if periodic and clock.now() >= next_periodic:
            next_periodic = clock.now() + PERIODIC_EVERY
            _run_periodic(periodic, clock.now())
        stop.wait(interval)
    log.info("scheduler stopped")


def _run_periodic(jobs: Sequence[PeriodicJob], now: datetime) -> None:
    for job in jobs:
        try:
            job(now)
        except Exception:
            log.exception("periodic job failed; it is offered again in a minute")
