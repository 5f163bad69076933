"""The scheduler process's loop: tick every ``STEPMAIL_DISPATCH_INTERVAL``, offer periodic jobs
the time every ten seconds (each decides whether it is due). ``stepmail scheduler`` runs it;
``stepmail run`` runs it in a thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dramatiq

from orchestrator.runtime import Runtime
from orchestrator.scheduling.broker import BrokerDispatcher, Dispatcher
from orchestrator.services.analytics import run_rollups_if_due, snapshot_bands_if_due
from orchestrator.services.archive import prune_archive_if_due
from orchestrator.services.health import run_daily_if_due
from orchestrator.services.scheduling import tick
from orchestrator.services.tasks import escalate_overdue_tasks

log = logging.getLogger(__name__)

PERIODIC_EVERY = timedelta(seconds=10)  # the most frequent job, the rollups, runs this often
PeriodicJob = Callable[[datetime], object]


def periodic_jobs(runtime: Runtime) -> list[PeriodicJob]:
    """The jobs one scheduler runs, each when due (a watermark per job, so two schedulers
    never run one window twice): the analytics rollups (10 s), the message archive's prune
    (hourly), the daily health job, the daily snapshot of health bands and the overdue-task
    escalation."""
    engine = runtime.engine

    def health_daily(now: datetime) -> object:
        rules = runtime.usage_rules()
        return run_daily_if_due(engine, rules=rules, now=now, notify=runtime.notify_now)

    def overdue_tasks(now: datetime) -> object:
        config = runtime.handoff_config()
        return escalate_overdue_tasks(engine, runtime.transport, config=config, now=now)

    def rollups(now: datetime) -> object:
        return run_rollups_if_due(engine, rules=runtime.analytics_rules(), now=now)

    def archive_prune(now: datetime) -> object:
        retention = runtime.analytics_rules().archive_retention
        return prune_archive_if_due(engine, retention=retention, now=now)

    def band_snapshot(now: datetime) -> object:
        return snapshot_bands_if_due(engine, rules=runtime.analytics_rules(), now=now)

    return [rollups, health_daily, archive_prune, band_snapshot, overdue_tasks]


def start_scheduler_thread(runtime: Runtime, broker: dramatiq.Broker) -> threading.Event:
    """Tick in a daemon thread, with the periodic jobs; set the returned event to stop it."""
    settings = runtime.settings
    stop = threading.Event()
    dispatcher = BrokerDispatcher(broker, settings.queue_name, settings.dispatch_message_size)
    thread = threading.Thread(
        target=run_scheduler,
        name="stepmail-scheduler",
        daemon=True,
        args=(runtime, dispatcher, stop, periodic_jobs(runtime)),
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

    ``periodic`` jobs are offered the time every ten seconds; each decides whether it is due (see
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
