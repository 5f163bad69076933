"""The plan and time of the statement that stores a batch's moved health scores
(``health/rescore``), at PostgreSQL's price of a random page and at the price an event batch's
transaction sets (``db/planning.plan_for_many_probes``): interleaved ``EXPLAIN ANALYZE``
runs, each rolled back, on a table of ``--customers`` customers.

    su postgres -c "createdb -O stepmail stepmail_bench_plans"      # once
    .venv/bin/python bench/moved_scores_plan.py
    .venv/bin/python bench/moved_scores_plan.py --customers 3000 --moved 640

The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_db import prepare_database, seed_customers
from sqlalchemy import Connection, text

from orchestrator.db.planning import RANDOM_PAGE_COST
from orchestrator.health.rescore import _STORE_MOVED_POSTGRES

DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_plans"
COMPONENTS = {"logins": {"raw": 4, "value": 0.4, "weight": 30.0}}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--moved", type=int, default=640, help="scores that moved in a batch")
    parser.add_argument("--pairs", type=int, default=25)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    engine = prepare_database(args.database_url)
    now = datetime.now(UTC)
    seed_customers(engine, "plan-", args.customers, now - timedelta(days=3))
    prices = {"PostgreSQL's (4)": 4.0, f"a batch's ({RANDOM_PAGE_COST})": RANDOM_PAGE_COST}
    times: dict[str, list[float]] = {label: [] for label in prices}
    shapes: dict[str, set[str]] = {}
    with engine.connect() as connection:
        connection.execute(text("ANALYZE customer"))
        connection.commit()
        ids = [row[0] for row in connection.execute(text("SELECT id FROM customer"))]
        for _ in range(args.pairs):
            moved = sorted(random.sample(ids, min(args.moved, len(ids))))
            for label in random.sample(list(prices), len(prices)):  # in turn, in either order
                plan = _explained(connection, moved, prices[label], now)
                times[label].append(plan["Planning Time"] + plan["Execution Time"])
                shapes[label] = {_shape(node) for node in _nodes(plan["Plan"]) if _shape(node)}
    engine.dispose()
    print(f"{args.moved} moved scores among {args.customers:,} customers, {args.pairs} pairs")
    for label, spent in times.items():
        print(
            f"  random page at {label}: median {statistics.median(spent):.2f} ms, "
            f"min {min(spent):.2f}; {', '.join(sorted(shapes[label]))}"
        )


def _explained(connection: Connection, moved: list[int], price: float, now: datetime) -> Any:
    connection.execute(text(f"SET LOCAL random_page_cost = {price}"))
    statement = text(f"EXPLAIN (ANALYZE, FORMAT JSON) {_STORE_MOVED_POSTGRES}")
    params = {
        "ids": moved,
        "scores": [60] * len(moved),
        "bands": ["tips"] * len(moved),
        "components": json.dumps([COMPONENTS] * len(moved)),
        "now": now,
    }
    plan = connection.execute(statement, params).scalar_one()[0]
    connection.rollback()
    return plan


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _shape(node: dict[str, Any]) -> str:
    """How the plan reaches the customer table ('' for nodes that do not)."""
    kind = str(node["Node Type"])
    if node.get("Relation Name") == "customer" and "Scan" in kind:
        return f"{kind} on customer"
    return kind if kind in ("Hash Join", "Nested Loop", "Merge Join") else ""


if __name__ == "__main__":
    main()
