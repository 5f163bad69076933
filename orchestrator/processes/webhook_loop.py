"""The outgoing-webhook delivery loop, a thread of the scheduler process (and of ``stepmail
run``): a round every second while there is nothing to do, back to back while there is.
It has its own HTTP client and threads, so a slow or dead endpoint never delays a tick."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from orchestrator.runtime import Runtime
from orchestrator.services.webhooks import deliver_due

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0
PARALLEL_POSTS = 8


def start_webhook_loop(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_webhook_loop, name="stepmail-webhooks", daemon=True, args=(runtime, stop)
    )
    thread.start()
    return thread


def run_webhook_loop(runtime: Runtime, stop: threading.Event) -> None:
    """Deliver until ``stop`` is set; the round in hand is finished first."""
    rules = runtime.outgoing_webhook_rules()
    client = httpx.Client(timeout=rules.timeout, follow_redirects=False, trust_env=False)
    pool = ThreadPoolExecutor(PARALLEL_POSTS, thread_name_prefix="stepmail-webhook-post")
    log.info("webhook delivery started")
    try:
        while not stop.is_set():
            try:
                done = deliver_due(
                    runtime.engine,
                    client,
                    rules=rules,
                    clock=runtime.clock,
                    jitter=runtime.jitter,
                    pool=pool,
                )
            except Exception:
                log.exception("webhook delivery round failed; retrying in a second")
                done = 0
            if not done:
                stop.wait(IDLE_WAIT)
    finally:
        pool.shutdown(wait=True)
        client.close()
        log.info("webhook delivery stopped")
