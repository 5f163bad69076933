"""The scheduler process's loop: tick every ``STEPMAIL_DISPATCH_INTERVAL``, offer periodic jobs
the time every ten seconds (each decides whether it is due). ``stepmail scheduler`` runs it in
its main thread (stopped by SIGTERM after the tick in hand); ``stepmail run`` runs it in a
thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dramatiq

from orchestrator.observability.metrics import TICKS
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


class Heartbeat:
    """When the loop last finished a tick; the metrics port's ``/healthz`` answers 503 once it
    is older than ``max_age`` (a loop stuck on a dead database connection, say)."""

    def __init__(self, max_age: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self._monotonic = max_age, monotonic
        self._last = monotonic()

    def beat(self) -> None:
        self._last = self._monotonic()

    def check(self) -> tuple[bool, str]:
        age = self._monotonic() - self._last
        if age > self.max_age:
            return False, f"scheduler loop: no tick for {age:.0f}s"
        return True, "ok"


def scheduler_jobs(
    runtime: Runtime, broker: dramatiq.Broker, stop: threading.Event, heartbeat: Heartbeat | None
) -> None:
    """The scheduler with its periodic jobs (:func:`periodic_jobs`), in this thread."""
    settings = runtime.settings
    dispatcher = BrokerDispatcher(broker, settings.queue_name, settings.dispatch_message_size)
    run_scheduler(runtime, dispatcher, stop, periodic_jobs(runtime), heartbeat)


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
    """Tick in a daemon thread (``stepmail run``); set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=scheduler_jobs,
        name="stepmail-scheduler",
        daemon=True,
        args=(runtime, broker, stop, None),
    )
    thread.start()
    return stop


def run_scheduler(
    runtime: Runtime,
    dispatcher: Dispatcher,
    stop: threading.Event,
    periodic: Sequence[PeriodicJob] = (),
    heartbeat: Heartbeat | None = None,
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set; a failed tick is logged, not fatal.

    ``periodic`` jobs are offered the time every ten seconds; each decides whether it is due (see
    :mod:`orchestrator.scheduling.periodic`), so the tick itself stays what is due and nothing
    else. ``stop`` is only looked at between ticks: a tick in hand dispatches what it claimed.
    """
    settings, clock = runtime.settings, runtime.clock
    interval, batch_size = settings.dispatch_interval, settings.dispatch_batch_size
    lease = timedelta(seconds=settings.send_lease)
    log.info("scheduler started (interval %.1fs, batch %d)", interval, batch_size)
    next_periodic = clock.now()
    ticks = 0
    while not stop.is_set():
        try:
            count = tick(runtime.engine, dispatcher, clock.now(), batch_size, lease)
            TICKS.labels("ok").inc()
            if count:
                log.info("dispatched %d due sends", count)
        except Exception:
            TICKS.labels("failed").inc()
            log.exception("scheduler tick failed; retrying next interval")
        else:
            if heartbeat is not None:
                heartbeat.beat()
        ticks += 1
        if periodic and clock.now() >= next_periodic and not stop.is_set():
            next_periodic = clock.now() + PERIODIC_EVERY
            _run_periodic(periodic, clock.now())
        stop.wait(interval)
    log.info(
        "scheduler stopped cleanly after %d ticks: the last tick's rows were dispatched", ticks
    )


def _run_periodic(jobs: Sequence[PeriodicJob], now: datetime) -> None:
    for job in jobs:
        try:
            job(now)
        except Exception:
            log.exception("periodic job failed; it is offered again shortly")
