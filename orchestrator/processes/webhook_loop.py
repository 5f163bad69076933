"""The outgoing-webhook delivery loop, a thread of the scheduler process (and of ``stepmail
run``): up to ``PARALLEL_POSTS`` POSTs at once, one per endpoint (its order), claiming again
as each ends; it looks for due messages every second while idle. It has its own HTTP client
and threads, so a slow or dead endpoint never delays a tick, nor another endpoint."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta

import httpx

from orchestrator.runtime import Runtime
from orchestrator.services.webhooks import prune_delivered, start_due

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0
PARALLEL_POSTS = 8
PRUNE_EVERY = 3600.0  # seconds between removals of delivered messages past their retention


def start_webhook_loop(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_webhook_loop, name="stepmail-webhooks", daemon=True, args=(runtime, stop)
    )
    thread.start()
    return thread


def run_webhook_loop(runtime: Runtime, stop: threading.Event) -> None:
    """Deliver until ``stop`` is set; the POSTs in flight then finish and are recorded."""
    rules = runtime.outgoing_webhook_rules()
    client = httpx.Client(timeout=rules.timeout, follow_redirects=False, trust_env=False)
    pool = ThreadPoolExecutor(PARALLEL_POSTS, thread_name_prefix="stepmail-webhook-post")
    in_flight: set[Future[str]] = set()
    log.info("webhook delivery started")
    next_prune = runtime.clock.monotonic()
    try:
        while not stop.is_set():
            if rules.retention_days and runtime.clock.monotonic() >= next_prune:
                next_prune = runtime.clock.monotonic() + PRUNE_EVERY
                _prune(runtime, rules.retention_days)
            in_flight = {future for future in in_flight if not future.done()}
            try:
                started = start_due(
                    runtime.engine,
                    client,
                    rules=rules,
                    clock=runtime.clock,
                    jitter=runtime.jitter,
                    pool=pool,
                    limit=PARALLEL_POSTS - len(in_flight),  # never queued behind a thread
                )
            except Exception:
                log.exception("webhook delivery round failed; retrying in a second")
                started = []
            in_flight.update(started)
            if not started:
                # Wake when a POST ends (its endpoint's next message may be due) or after a
                # second (a retry's time may have come); stop is looked at every time.
                wait(in_flight, timeout=IDLE_WAIT, return_when=FIRST_COMPLETED)
                if not in_flight:
                    stop.wait(IDLE_WAIT)
    finally:
        wait(in_flight)  # each bounded by STEPMAIL_WEBHOOK_TIMEOUT
        pool.shutdown(wait=True)
        client.close()
        log.info("webhook delivery stopped")


def _prune(runtime: Runtime, retention_days: int) -> None:
    before = runtime.clock.now() - timedelta(days=retention_days)
    try:
        gone = prune_delivered(runtime.engine, before)
    except Exception:
        log.exception("pruning delivered webhook messages failed; trying again in an hour")
        return
    if gone:
        log.info("pruned %d delivered webhook message(s) older than %d days", gone, retention_days)
