"""The generic plans of Stepmail's statements that take an array parameter, on a database the
size of a year-old installation: which of them would read rows their ids do not name.

psycopg prepares a statement on a connection from its fifth run, and PostgreSQL may then plan
it once for any parameters (a *generic* plan). For ``column = ANY($1)`` the planner cannot see
how many ids ``$1`` holds, and may pick another index and test each row it reads against the
array item by item: the event path's open-enrollments lookup did (12.4 vs 0.7 ms, bench/README
"Session 29"). This bench lists, for every such statement PostgreSQL has seen, the generic
plan's scans over tables past ``--big`` rows that are not driven by the array: a sequential
scan, or an index scan whose ``Filter`` holds the ``ANY``.

The statements come from ``pg_stat_statements`` (whatever ran before: the benches, the test
suite), so they are the texts the code really sends::

    su postgres -c "psql -c \\"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'\\""
    pg_ctlcluster 15 main restart
    su postgres -c "psql -d postgres -c 'CREATE EXTENSION pg_stat_statements'"
    su postgres -c "createdb -O stepmail stepmail_bench_plans"                   # once
    .venv/bin/python bench/api_load.py --requests 2000 --batch-requests 20        # or tests
    .venv/bin/python bench/generic_plans.py
    su postgres -c "psql -c 'ALTER SYSTEM RESET ALL'"; pg_ctlcluster 15 main restart

The plans database is rebuilt and seeded (its name must contain ``bench``); nothing is run,
only ``EXPLAIN EXECUTE`` under ``plan_cache_mode = force_generic_plan``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_db import FUTURE_STEPS, analyze, prepare_database, seed_customers
from event_statements import SEED_HISTORY
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from orchestrator.db.engine import make_engine

DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_plans"
DEFAULT_STATEMENTS_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/postgres"

# A year of sign-ups: most journeys finished, their mails sent; a tenth still running.
SEED_ROWS = tuple(
    text(statement)
    for statement in (
        "UPDATE enrollment SET state = CASE WHEN id % 10 = 0 THEN 'active' ELSE 'completed' END",
        """
        INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id, due_at,
            wake_at, state, attempts, dispatches, open_count, click_count, updated_at, sent_at,
            provider_message_id)
        SELECT e.id, e.customer_id, e.journey_id, s.step_id, e.anchor_at, e.anchor_at,
            CASE WHEN e.state = 'active' THEN 'pending' ELSE 'sent' END, 0, 0, 0, 0,
            e.anchor_at, CASE WHEN e.state = 'active' THEN NULL ELSE e.anchor_at END,
            CASE WHEN e.state = 'active' THEN NULL ELSE 'msg-' || e.id || '-' || s.step_id END
        FROM enrollment AS e CROSS JOIN unnest(CAST(:steps AS text[])) AS s(step_id)
        """,
        """
        INSERT INTO delivery_attempt (scheduled_send_id, attempt, transport, started_at,
            finished_at, outcome, provider_message_id)
        SELECT id, 1, 'sendgrid', sent_at, sent_at, 'sent', provider_message_id
        FROM scheduled_send WHERE state = 'sent'
        """,
        """
        INSERT INTO provider_event (provider, event_id, content_hash, event_type, email,
            scheduled_send_id, provider_message_id, occurred_at, received_at, payload)
        SELECT 'sendgrid', 'ev-' || id, 'hash-' || id, 'delivered', 'x@customer.example', id,
            provider_message_id, sent_at, sent_at, CAST('{}' AS json)
        FROM scheduled_send WHERE state = 'sent' AND id % 4 = 0
        """,
        """
        INSERT INTO csm_task (customer_id, kind, reason, status, created_at, due_at)
        SELECT id, 'health_alert', 'score under 50',
            CASE WHEN id % 5 = 0 THEN 'open' ELSE 'done' END,
            signed_up_at, signed_up_at + interval '2 days'
        FROM customer WHERE id % 7 = 0
        """,
        """
        INSERT INTO health_score_history (customer_id, score, band, components, computed_at)
        SELECT id, 60, 'medium', CAST('{}' AS json), signed_up_at FROM customer
        """,
    )
)

ARRAY_STATEMENT = r"(?i)(= ?ANY ?\(\$|unnest\()"
# The benches' own seeding (bench_db's future steps, SEED_ROWS above): not Stepmail's code.
BENCH_SEEDING = r"AS s\(step_id\)"
ARRAY_FILTER = re.compile(r"ANY \(\$\d+")  # an array parameter tested row by row


@dataclass(frozen=True)
class Finding:
    """A scan of a big table that the array does not drive."""

    kind: str  # ROW_BY_ROW or SEQUENTIAL
    relation: str


# The hazard: the planner costs an array parameter at 10 items, and a batch brings 1,000.
ROW_BY_ROW = "tests each row against the array"
# Worth a look: the whole table for an estimated 10 ids (a plan for the real count, or a
# larger table after ANALYZE, may agree or not).
SEQUENTIAL = "reads the whole table"


def seed(engine: Engine, customers: int, events_each: int) -> None:
    now = datetime.now(UTC)
    seed_customers(engine, "old-", customers, now - timedelta(days=200))
    with engine.begin() as connection:
        for statement in SEED_ROWS:
            connection.execute(statement, {"steps": ["welcome", *FUTURE_STEPS]})
        connection.execute(SEED_HISTORY, {"count": events_each})
    analyze(engine)


def seen_statements(url: str) -> list[str]:
    """The array statements ``pg_stat_statements`` holds (this role's), most called first."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("""
                    SELECT query FROM pg_stat_statements
                    WHERE query ~ :pattern AND query !~* 'pg_catalog|pg_stat_statements'
                      AND query !~* '^\\s*(explain|prepare)' AND query !~ :seeding
                    GROUP BY query ORDER BY sum(calls) DESC
                """),
                {"pattern": ARRAY_STATEMENT, "seeding": BENCH_SEEDING},
            )
            return [row.query for row in rows]
    except ProgrammingError as exc:
        why = str(exc.orig).splitlines()[0]
        raise SystemExit(
            f"cannot read pg_stat_statements at {make_url(url).database!r} ({why});"
            " load and create it first (this module's docstring)"
        ) from None
    finally:
        engine.dispose()


def parameter_count(statement: str) -> int:
    return max((int(n) for n in re.findall(r"\$(\d+)", statement)), default=0)


def generic_plan(connection: Connection, statement: str) -> dict[str, Any]:
    """The generic plan, as EXPLAIN's JSON, of ``statement`` prepared with no types given."""
    connection.exec_driver_sql("DEALLOCATE ALL")
    # pg_stat_statements made every constant a parameter; one in LIMIT would be typed text
    typed = re.sub(
        r"\b((?:LIMIT|OFFSET) (?:CASE WHEN [^$]* THEN )?)\$(\d+)", r"\1$\2::bigint", statement
    )
    connection.exec_driver_sql(f"PREPARE audited AS {typed}")
    nulls = ", ".join(["NULL"] * parameter_count(statement))
    call = (
        f"EXPLAIN (FORMAT JSON) EXECUTE audited({nulls})"
        if nulls
        else "EXPLAIN (FORMAT JSON) EXECUTE audited"
    )
    plan = connection.exec_driver_sql(call).scalar_one()
    return dict((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def findings(plan: dict[str, Any], sizes: dict[str, float], big: int) -> list[Finding]:
    found = []
    for node in nodes(plan):
        relation = node.get("Relation Name")
        if relation is None or sizes.get(relation, 0) < big:
            continue
        condition = node.get("Filter", "")
        if ARRAY_FILTER.search(condition):
            found.append(Finding(ROW_BY_ROW, relation))
        elif node["Node Type"] == "Seq Scan":
            found.append(Finding(SEQUENTIAL, relation))
    return found


def outline(plan: dict[str, Any], depth: int = 0) -> Iterator[str]:
    """One line a node: type, relation and index, and the conditions that choose rows."""
    parts = [plan["Node Type"]]
    for key in ("Relation Name", "Index Name", "Index Cond", "Filter", "Hash Cond"):
        if key in plan:
            parts.append(f"{key.split()[0].lower()}={plan[key]}")
    yield "    " + "  " * depth + " ".join(parts)[:160]
    for child in plan.get("Plans", []):
        yield from outline(child, depth + 1)


def table_sizes(connection: Connection) -> dict[str, float]:
    """Live rows by table, as the statistics collector counts them (``reltuples`` is -1 on a
    table never analyzed: a young one, where plans go wrong)."""
    rows = connection.execute(text("SELECT relname, n_live_tup FROM pg_stat_user_tables"))
    return {row.relname: float(row.n_live_tup) for row in rows}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--events-each", type=int, default=10, help="usage events a customer")
    parser.add_argument("--big", type=int, default=10_000, help="rows from which a table counts")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--statements-url",
        default=DEFAULT_STATEMENTS_URL,
        help="a database where pg_stat_statements is installed",
    )
    parser.add_argument("--reuse", action="store_true", help="the database as the last run left it")
    parser.add_argument("--plans", action="store_true", help="print every plan, not only findings")
    args = parser.parse_args(argv)
    statements = seen_statements(args.statements_url)
    if not statements:
        raise SystemExit("pg_stat_statements holds no array statement: run a bench first")
    if args.reuse:
        engine = make_engine(args.database_url)
    else:
        engine = prepare_database(args.database_url)
        seed(engine, args.customers, args.events_each)
    with engine.connect() as connection:
        driver: Any = connection.connection.driver_connection
        driver.prepare_threshold = None  # psycopg prepares nothing here: only our PREPARE
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        sizes = table_sizes(connection)
        print(
            "tables: "
            + ", ".join(
                f"{name} {rows:,.0f}" for name, rows in sorted(sizes.items()) if rows >= args.big
            )
        )
        counts = {ROW_BY_ROW: 0, SEQUENTIAL: 0}
        for number, statement in enumerate(statements, 1):
            one_line = " ".join(statement.split())
            try:
                plan = generic_plan(connection, statement)
            except Exception as exc:
                connection.rollback()
                connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                print(f"\n[{number}] not planned ({why})\n    {one_line[:200]}")
                continue
            found = findings(plan, sizes, args.big)
            for kind in {finding.kind for finding in found}:
                counts[kind] += 1
            if found or args.plans:
                print(f"\n[{number}] cost {plan['Total Cost']:,.0f}: {one_line[:200]}")
                for finding in found:
                    print(f"  ** {finding.relation}: {finding.kind}")
                print("\n".join(outline(plan)))
        print(
            f"\n{len(statements)} array statements; {counts[ROW_BY_ROW]} {ROW_BY_ROW},"
            f" {counts[SEQUENTIAL]} {SEQUENTIAL} (tables of {args.big:,} rows or more)"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
