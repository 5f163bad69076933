"""Where a batch of events spends its time in PostgreSQL: the wall time of each statement of
``track_events`` (from just before the driver sends it to just after its rows are read, so
the parameters' encoding and the round trip are in it), per batch of 1,000 events over 1,000
customers, with the shipped journeys, health and lifecycle files.

    su postgres -c "createdb -O stepmail stepmail_bench_events"      # once
    .venv/bin/python bench/event_statements.py
    .venv/bin/python bench/event_statements.py --fillfactor 100      # the table as before 0009

``--fillfactor`` sets the customer table's before the customers are seeded (migration 0011
sets 60). The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import host_speed
from bench_db import prepare_database, seed_customers
from event_cpu import BATCH, CUSTOMERS, DEFAULT_DATABASE_URL, batch_events, shipped_runtime
from proc_stats import backend_cpu_ms, server_cpu
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from orchestrator.services.events import track_events
from orchestrator.usage.events import EventSubmission


class StatementClock:
    """Wall time and count per statement text, from SQLAlchemy's cursor events."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._started: dict[int, float] = {}

    def before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        key = " ".join(statement.split())[:110]
        self.seconds[key] += time.perf_counter() - self._started.pop(id(cursor))
        self.calls[key] += 1

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()


# Every 14 hours, a tenth of them each of the shipped health file's other inputs (features,
# tickets, NPS answers with a score); all-visible afterwards, as autovacuum leaves old rows.
SEED_HISTORY = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    SELECT c.id, (ARRAY['login', 'login', 'login', 'login', 'report_created', 'report_created',
            'workflow_created', 'integration_connected', 'support_ticket_opened',
            'nps_submitted'])[1 + (g * 7 + c.id) % 10],
        'history-' || c.id || '-' || g, at, at,
        CASE WHEN (g * 7 + c.id) % 10 = 9 THEN '{"score": 8}'::json ELSE '{}'::json END
    FROM customer AS c CROSS JOIN generate_series(1, :count) AS g
    CROSS JOIN LATERAL (SELECT now() - g * interval '14 hours' - c.id % 60 * interval '1 minute'
        AS at) AS t
    ORDER BY at
""")


def seed_history(engine: Any, per_customer: int) -> None:
    with engine.begin() as connection:
        connection.execute(SEED_HISTORY, {"count": per_customer})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE usage_event"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--fillfactor", type=int, choices=range(10, 101), metavar="10..100")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="events per customer already stored, over the last 175 days (the costs of reads "
        "that walk a customer's history show only with one)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    engine = prepare_database(args.database_url)
    if args.fillfactor is not None:
        with engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE customer SET (fillfactor = {args.fillfactor})"))
    seed_customers(engine, "ev-", CUSTOMERS, datetime.now(UTC) - timedelta(days=3))
    if args.history:
        seed_history(engine, args.history)
    runtime = shipped_runtime(args.database_url)
    clock = StatementClock()
    event.listen(runtime.engine, "before_cursor_execute", clock.before)
    event.listen(runtime.engine, "after_cursor_execute", clock.after)
    run = f"{int(time.time())}"

    def batch(n: int) -> None:
        events = batch_events(n, lambda k: f"{run}-{n}-{k}")
        track_events(
            runtime.engine,
            EventSubmission(events, True),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=lambda _ids: None,
        )

    try:
        for n in range(CUSTOMERS // BATCH):  # every customer once: first scores and stages
            batch(n)
        clock.clear()
        database = make_url(args.database_url).database
        backends_before = server_cpu(database=database)
        started, cpu_started = time.perf_counter(), time.process_time()
        for n in range(args.batches):
            batch(CUSTOMERS // BATCH + n)
        wall = 1000 * (time.perf_counter() - started) / args.batches
        own_ms = 1000 * (time.process_time() - cpu_started) / args.batches
        backends_after = server_cpu(database=database)
        backend_ms = backend_cpu_ms(backends_before, backends_after)
        runtime.close()  # its backends exit and report their counters (idle, they wait 10 s)
        time.sleep(0.5)
        with engine.connect() as connection:
            updates, hot = connection.execute(
                text(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                    "WHERE relname = 'customer'"
                )
            ).one()
        print(
            f"{wall:.1f} ms wall per batch of {BATCH}; CPU per batch: PostgreSQL's backends "
            f"{backend_ms / args.batches:.1f} ms, this process {own_ms:.1f} ms; customer updates "
            f"so far: {updates}, {hot} of them on their page (HOT)"
        )
        print(host_speed.describe(host_speed.loop_ms()))
        ranked = sorted(clock.seconds.items(), key=lambda item: -item[1])
        for statement, seconds in ranked[: args.top]:
            per_batch = 1000 * seconds / args.batches
            calls = clock.calls[statement] / args.batches
            print(f"{per_batch:7.2f} ms  x{calls:<4.1f} {statement}")
    finally:
        runtime.close()
        engine.dispose()


if __name__ == "__main__":
    main()
