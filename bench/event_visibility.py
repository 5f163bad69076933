"""What the health probes cost when ``usage_event``'s pages are not yet marked all-visible,
and once VACUUM has marked them (migration 0013 has autovacuum do it every 10,000 inserts).

A batch of events rescores its customers with one index-only probe per customer and health
question (``health/inputs.py``); on a page the visibility map does not mark all-visible,
every event a probe counts is read from the heap as well. This seeds ``--history`` events a
customer (the shipped health file's names, one every 14 hours, in one transaction, with
autovacuum off for the table), then runs the probes of 1,000 customers under ``EXPLAIN
(ANALYZE, BUFFERS)`` ``--runs`` times with the pages unmarked, VACUUMs the table, and runs them
again: heap fetches, shared buffers and the execution time under EXPLAIN (median and minimum;
its own timing adds to both alike), and the statement's median wall time alone (sent, run
and its rows read, as the event path does).

    su postgres -c "createdb -O stepmail stepmail_bench_events"      # once
    .venv/bin/python bench/event_visibility.py [--history 40] [--runs 15]

The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import host_speed
from bench_db import prepare_database, seed_customers
from event_cpu import BATCH, CUSTOMERS, DEFAULT_DATABASE_URL, shipped_runtime
from event_statements import SEED_HISTORY
from sqlalchemy import Engine, event, text

from orchestrator.health.inputs import load_inputs


def probe_statement(engine: Engine, definition: Any, ids: list[int]) -> tuple[str, Any]:
    """The health probes' statement and parameters as the driver receives them."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "count(*)" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as connection:
            load_inputs(connection, definition, ids, datetime.now(UTC))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen[-1]


def explain(engine: Engine, statement: str, parameters: Any, runs: int) -> dict[str, float]:
    times: list[float] = []
    plain: list[float] = []
    fetches = buffers = 0
    raw = engine.raw_connection()
    try:
        for _ in range(runs):
            cursor: Any = raw.cursor()  # psycopg's, which takes ``prepare``
            cursor.execute("SET LOCAL jit = off")
            started = time.perf_counter()
            cursor.execute(statement, parameters, prepare=False)  # as the event path runs it
            cursor.fetchall()
            plain.append(1000 * (time.perf_counter() - started))
            raw.rollback()
            cursor = raw.cursor()
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
            row = cursor.fetchone()
            assert row is not None
            plan = row[0][0]
            raw.rollback()
            times.append(plan["Execution Time"])
            fetches = _heap_fetches(plan["Plan"])
            buffers = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
    finally:
        raw.close()
    return {
        "plain": statistics.median(plain),
        "median": statistics.median(times),
        "min": min(times),
        "fetches": fetches,
        "buffers": buffers,
    }


def _heap_fetches(plan: dict[str, Any]) -> int:
    below = sum(_heap_fetches(child) for child in plan.get("Plans", []))
    return int(plan.get("Heap Fetches", 0)) + below


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--history", type=int, default=40, help="events a customer")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    engine = prepare_database(args.database_url)
    with engine.begin() as connection:
        settings = connection.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'usage_event'::regclass")
        ).scalar_one()
        connection.execute(text("ALTER TABLE usage_event SET (autovacuum_enabled = false)"))
    seed_customers(engine, "ev-", CUSTOMERS, datetime.now(UTC) - timedelta(days=3))
    with engine.begin() as connection:
        connection.execute(SEED_HISTORY, {"count": args.history})
    autocommit = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    autocommit.execute(text("ANALYZE usage_event"))
    runtime = shipped_runtime(args.database_url)
    try:
        definition = runtime.usage_rules().health
        with engine.connect() as connection:
            ids = list(
                connection.execute(
                    text("SELECT id FROM customer ORDER BY id LIMIT :n"), {"n": BATCH}
                ).scalars()
            )
        statement, parameters = probe_statement(runtime.engine, definition, ids)
        print(
            f"{args.history * CUSTOMERS:,} events ({args.history} a customer), the health probes "
            f"of {len(ids):,} customers, {args.runs} runs; usage_event's settings: {settings}"
        )
        print(host_speed.describe(host_speed.loop_ms()))
        for label in ("pages not marked", "after VACUUM"):
            if label == "after VACUUM":
                autocommit.execute(text("VACUUM usage_event"))
            found = explain(engine, statement, parameters, args.runs)
            print(
                f"  {label:17s} heap fetches {found['fetches']:>6,.0f}  buffers "
                f"{found['buffers']:>6,.0f}  under EXPLAIN median {found['median']:6.2f} ms, "
                f"min {found['min']:6.2f} ms; alone median {found['plain']:6.2f} ms"
            )
        print(host_speed.describe(host_speed.loop_ms()))
    finally:
        autocommit.close()
        runtime.close()
        engine.dispose()


if __name__ == "__main__":
    main()
