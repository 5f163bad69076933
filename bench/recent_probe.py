"""The console's "last events of a customer" on PostgreSQL with the shipped statement
(usage/recent.py: name by name from the index's end) and with the one it replaced in session
37 (every event of the customer ordered by moment and id), interleaved, for three customers.

    su postgres -c "createdb -O stepmail stepmail_bench_plans"      # once
    .venv/bin/python bench/recent_probe.py
    .venv/bin/python bench/recent_probe.py --customers 3000 --events 200 --rounds 5

``--customers`` customers each send ``--events`` events of seven names over the last weeks;
"quiet" has 3,000 events of nine names a year old (beneath all the others), "busy" 30,000 of
nine names in the last hours, and "typical" is one of the many. It prints the median wall time
of each form (25 runs a round) and its shared buffers. The database name must contain
``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_db import prepare_database, seed_customers
from latest_probe import _buffers, _median_ms
from sqlalchemy import text

from orchestrator.services.customer_directory import EVENTS_SHOWN
from orchestrator.usage import recent

DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_plans"
PLAIN = """SELECT name, occurred_at, properties FROM usage_event
    WHERE customer_id = %(customer_id)s ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s"""
SEED = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    SELECT c.id, 'ev' || (g % 7), 'm-' || g, :now - (g * 7 + c.id % 7) * interval '1 minute',
        :now, CAST('{}' AS json)
    FROM customer AS c, generate_series(1, :events) AS g WHERE c.external_id LIKE 'rp-%'
    UNION ALL
    SELECT c.id, 'ev' || (g % 9), 'q-' || g, :now - interval '365 days' - g * interval '1 minute',
        :now, CAST('{}' AS json)
    FROM customer AS c, generate_series(1, 3000) AS g WHERE c.external_id = 'quiet-1'
    UNION ALL
    SELECT c.id, 'ev' || (g % 9), 'b-' || g, :now - g * interval '1 second', :now,
        CAST('{}' AS json)
    FROM customer AS c, generate_series(1, 30000) AS g WHERE c.external_id = 'busy-1'
""")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--events", type=int, default=200, help="events of each of them")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    engine = prepare_database(args.database_url)
    seed_customers(engine, "rp-", args.customers, now - timedelta(days=120))
    seed_customers(engine, "quiet-", 1, now - timedelta(days=400))
    seed_customers(engine, "busy-", 1, now - timedelta(days=1))
    with engine.begin() as connection:
        connection.execute(SEED, {"now": now, "events": args.events})
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE usage_event")
        )
        total = connection.execute(text("SELECT count(*) FROM usage_event")).scalar_one()
        ids: dict[str, int] = dict(
            connection.execute(
                text(
                    "SELECT external_id, id FROM customer WHERE external_id IN "
                    "('quiet-1', 'busy-1', 'rp-17')"
                )
            ).all()
        )
    forms = {
        "plain (before)": PLAIN,
        "by name (shipped)": str(recent._RECENT_BY_NAME.compile(dialect=engine.dialect)),
    }
    raw: Any = engine.raw_connection().driver_connection
    print(f"{total:,} events; the last {EVENTS_SHOWN} of a customer; median of 25 runs a round")
    for label, external_id in (("quiet", "quiet-1"), ("busy", "busy-1"), ("typical", "rp-17")):
        params = {"customer_id": ids[external_id], "limit": EVENTS_SHOWN}
        for round_ in range(args.rounds):
            line = [f"{form} {_median_ms(raw, sql, params):.2f} ms" for form, sql in forms.items()]
            print(f"{label}, round {round_ + 1}: " + ", ".join(line))
        buffers = [f"{form} {_buffers(raw, sql, params):,}" for form, sql in forms.items()]
        print(f"{label}, shared buffers: " + ", ".join(buffers))
    raw.close()


if __name__ == "__main__":
    main()
