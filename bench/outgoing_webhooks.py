"""Outgoing webhooks: what ``emit`` adds to a fact's transaction (with nobody subscribed, and
with endpoints subscribed), and how many messages a second one delivery loop posts to
loopback receivers, signed, recorded attempt by attempt. It prints numbers only.

    .venv/bin/python bench/outgoing_webhooks.py                     # SQLite in a temp folder
    .venv/bin/python bench/outgoing_webhooks.py --database-url \\
        postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench --messages 5000

A PostgreSQL database is emptied first (TRUNCATE of every table), so its name must contain
``bench`` or ``test``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from orchestrator.clock import SystemClock  # noqa: E402
from orchestrator.db.engine import make_engine  # noqa: E402
from orchestrator.db.migrate import upgrade  # noqa: E402
from orchestrator.processes.webhook_loop import run_webhook_loop  # noqa: E402
from orchestrator.runtime import Runtime  # noqa: E402
from orchestrator.services.webhooks import OutgoingWebhookRules, add_endpoint  # noqa: E402
from orchestrator.webhooks.outbox import emit  # noqa: E402
from tests.support.environment import FixedDraw  # noqa: E402
from tests.support.webhook_receiver import webhook_receiver  # noqa: E402


def fresh_engine(url: str | None) -> Engine:
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    else:
        name = make_url(url).database or ""
        if "bench" not in name and "test" not in name:
            raise SystemExit(f"refusing to empty {name!r}: its name must contain bench or test")
    upgrade(url)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine


def emit_cost(engine: Engine, count: int) -> float:
    """Microseconds per emit, each in a transaction of its own (as a fact's would be)."""
    clock = SystemClock()
    started = time.perf_counter()
    for n in range(count):
        with engine.begin() as connection:
            emit(connection, "task.opened", {"task_id": n}, clock.now())
    return (time.perf_counter() - started) / count * 1e6


class _LoopHost:
    """What the loop takes of a runtime, without journeys or templates."""

    def __init__(self, engine: Engine, rules: OutgoingWebhookRules) -> None:
        self.engine, self._rules = engine, rules
        self.clock = SystemClock()
        self.jitter = FixedDraw()

    def outgoing_webhook_rules(self) -> OutgoingWebhookRules:
        return self._rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--messages", type=int, default=1000, help="events emitted")
    parser.add_argument("--endpoints", type=int, default=4)
    args = parser.parse_args()
    engine = fresh_engine(args.database_url)
    rules = OutgoingWebhookRules(
        allow_private=True, timeout=5, max_attempts=3, batch_size=50, retention_days=0
    )
    print(f"database: {engine.dialect.name}; {args.messages} events x {args.endpoints} endpoints")

    baseline = emit_cost(engine, 300)
    print(f"emit, nobody subscribed:        {baseline:8.0f} us a fact (one SELECT)")
    with ExitStack() as stack:
        receivers = [stack.enter_context(webhook_receiver()) for _ in range(args.endpoints)]
        for receiver in receivers:
            add_endpoint(engine, receiver.url, ["task.opened"], rules=rules, clock=SystemClock())
        per_fact = emit_cost(engine, args.messages)
        print(f"emit, {args.endpoints} endpoints subscribed: {per_fact:8.0f} us a fact")

        loop_host = _LoopHost(engine, rules)
        stop = threading.Event()
        started = time.perf_counter()
        thread = threading.Thread(
            target=run_webhook_loop, args=(cast(Runtime, loop_host), stop), daemon=True
        )
        thread.start()
        total = args.messages * args.endpoints
        while sum(len(r.received) for r in receivers) < total:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join()
        delivered = sum(len(r.received) for r in receivers)
        print(
            f"delivered {delivered} messages in {elapsed:.1f} s: {delivered / elapsed:.0f} "
            "messages/s (the scheduler's loop; each endpoint in order)"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
