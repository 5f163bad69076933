"""The health probes of 1,000 customers on PostgreSQL with the shipped "latest" question and
with the one it replaced in session 36 (ordered by moment and id in one step, which read and
sorted every event of the name a customer ever sent), interleaved, with and without customers
whose NPS history is long.

    su postgres -c "createdb -O stepmail stepmail_bench_plans"      # once
    .venv/bin/python bench/latest_probe.py
    .venv/bin/python bench/latest_probe.py --heavy 10 --answers 2000 --rounds 5

Each customer has a few logins and a tenth of them one NPS answer; ``--heavy`` of them have
``--answers`` NPS answers an hour apart. It prints the median wall time of the statement (25
runs a round, each form in turn) and its shared buffers. The database name must contain
``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_db import prepare_database, seed_customers
from event_cpu import shipped_runtime
from sqlalchemy import text

from orchestrator.health import inputs

DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_plans"
CUSTOMERS = 1_000
ONE_STEP = (  # the "latest" question before session 36
    "    (SELECT e.properties "
    + inputs._PROBE.replace("{since}", "'-infinity'")
    + "\n        ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) AS q{n}"
)
SEED = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    SELECT c.id, 'login', 'l-' || c.id || '-' || g, :now - g * interval '17 hours', :now,
        CAST('{}' AS json)
    FROM customer AS c, generate_series(1, 8) AS g
    UNION ALL
    SELECT c.id, 'nps_submitted', 'n-' || c.id, :now - interval '3 days', :now, '{"score": 8}'
    FROM customer AS c WHERE c.id % 10 = 0
    UNION ALL
    SELECT c.id, 'nps_submitted', 'h-' || c.id || '-' || g, :now - g * interval '1 hour', :now,
        json_build_object('score', g % 11)
    FROM customer AS c, generate_series(1, :answers) AS g WHERE c.id <= :heavy
""")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--heavy", type=int, default=10, help="customers with a long history")
    parser.add_argument("--answers", type=int, default=2_000, help="NPS answers each of them")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    engine = prepare_database(args.database_url)
    seed_customers(engine, "lp-", CUSTOMERS, now - timedelta(days=120))
    with engine.begin() as connection:
        connection.execute(SEED, {"now": now, "answers": args.answers, "heavy": args.heavy})
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE usage_event")
        )
    definition = shipped_runtime(args.database_url).usage_rules().health
    assert definition is not None, "journeys/health.yaml defines the health score"
    shipped = inputs._postgres_statement(definition)
    kept = inputs._ANSWERS["latest"]
    inputs._ANSWERS["latest"] = ONE_STEP
    try:
        before = inputs._postgres_statement.__wrapped__(definition)  # type: ignore[attr-defined]
    finally:
        inputs._ANSWERS["latest"] = kept
    with engine.connect() as connection:
        ids = list(connection.execute(text("SELECT id FROM customer ORDER BY id")).scalars())
    params = shipped.params(ids, now)
    forms = {
        "one step (before)": str(before.statement.compile(dialect=engine.dialect)),
        "with ties (shipped)": str(shipped.statement.compile(dialect=engine.dialect)),
    }
    raw: Any = engine.raw_connection().driver_connection
    print(
        f"{CUSTOMERS:,} customers, {args.heavy} of them with {args.answers:,} NPS answers; "
        "median of 25 runs a round"
    )
    for round_ in range(args.rounds):
        line = []
        for label, sql in forms.items():
            line.append(f"{label} {_median_ms(raw, sql, params):.2f} ms")
        print(f"round {round_ + 1}: " + ", ".join(line))
    for label, sql in forms.items():
        print(f"{label}: {_buffers(raw, sql, params):,} shared buffers")
    raw.close()


def _median_ms(raw: Any, sql: str, params: dict[str, Any]) -> float:
    cursor = raw.cursor()
    cursor.execute("SET LOCAL jit = off")
    runs = []
    for _ in range(25):
        started = time.perf_counter()
        cursor.execute(sql, params, prepare=False)
        cursor.fetchall()
        runs.append(1000 * (time.perf_counter() - started))
    raw.rollback()
    return statistics.median(runs)


def _buffers(raw: Any, sql: str, params: dict[str, Any]) -> int:
    cursor = raw.cursor()
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    row = cursor.fetchone()
    raw.rollback()
    plan = row[0][0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


if __name__ == "__main__":
    main()
