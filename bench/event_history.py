"""What a batch's usage questions cost as customers' histories grow: the two statements of
an event batch that read each customer's past events -- the health score's inputs
(``health/inputs.load_inputs``) and the lifecycle rules' usage questions
(``usage/prefetch.prefetch_usage``) -- for 1,000 customers among 10,000, after seeding every
customer with N past events spread over the last 120 days, on PostgreSQL. Each statement runs
12 times (psycopg prepares it after 5, and PostgreSQL may then switch to a generic plan); the
median of the last 5 is printed, with the table's size beside it.

    .venv/bin/python bench/event_history.py --history 0 30 300 \\
        --database-url postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_history
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench_db import prepare_database, seed_customers
from sqlalchemy import Connection, text

from orchestrator.health.inputs import load_inputs
from orchestrator.health.lifecycle import load_lifecycle
from orchestrator.health.loader import load_health
from orchestrator.usage.prefetch import prefetch_usage, usage_questions

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = 10_000
BATCH = 1_000
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_history"
# The shipped health and lifecycle files' events, about as often as a busy team sends them.
NAMES = ("login",) * 6 + ("report_created",) * 2 + ("workflow_created", "support_ticket_opened")

SEED_HISTORY = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    SELECT c.id, names[1 + (c.id + n) % cardinality(names)], 'h-' || n,
        :now - (n * interval '120 days') / :per_customer, :now, '{}'
    FROM customer AS c CROSS JOIN generate_series(1, :per_customer) AS n,
        CAST(:names AS varchar[]) AS names
""")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 30, 300])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    definition = load_health(ROOT / "journeys" / "health.yaml")
    lifecycle = load_lifecycle(ROOT / "journeys" / "lifecycle.yaml")
    questions = usage_questions(s.when for s in lifecycle.stages if s.when is not None)
    for per_customer in args.history:
        engine = prepare_database(args.database_url)
        now = datetime.now(UTC)
        seed_customers(engine, "hist-", CUSTOMERS, now - timedelta(days=200))
        with engine.begin() as connection:
            if per_customer:
                params = {"names": list(NAMES), "now": now, "per_customer": per_customer}
                connection.execute(SEED_HISTORY, params)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE usage_event"))
        with engine.connect() as connection:
            ids = [row[0] for row in connection.execute(text("SELECT id FROM customer"))]
            batch = ids[BATCH : 2 * BATCH]
            events = connection.execute(text("SELECT count(*) FROM usage_event")).scalar_one()
            inputs = _median(partial(load_inputs, definition=definition), batch, now, connection)
            usage = _median(partial(prefetch_usage, questions=questions), batch, now, connection)
        engine.dispose()
        print(
            f"{per_customer:>5} events a customer ({events:,} in the table): health inputs "
            f"{inputs:.1f} ms, lifecycle usage questions {usage:.1f} ms per {BATCH:,} customers"
        )


def _median(
    ask: Callable[..., object], batch: list[int], now: datetime, connection: Connection
) -> float:
    times = []
    for _ in range(12):
        started = time.perf_counter()
        ask(connection, customer_ids=batch, now=now)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times[-5:])


if __name__ == "__main__":
    main()
