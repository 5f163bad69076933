"""The journey page's versions on PostgreSQL: who started on each version, counted the way
the page did until session 39 (every enrollment the journey ever had, grouped by version) and
the way it does now (``journey_version_starts``, kept by the rollup job, plus the enrollments
it has not counted yet), and the whole of ``journey_versions`` (with who follows each).

    su postgres -c "createdb -O stepmail stepmail_bench_plans"      # once
    .venv/bin/python bench/version_counts.py
    .venv/bin/python bench/version_counts.py --journeys 5 --per-journey 400000

Each journey has five versions, its enrollments spread evenly over them; one in twenty is
still open and one in a thousand not counted yet by the job. It prints the median wall time
of 15 runs of each. The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bench_db import prepare_database
from sqlalchemy import Engine, text

from orchestrator.analytics.rollups import version_starts
from orchestrator.services.journey_versions import journey_versions

DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_plans"
VERSIONS = 5
OLD_COUNT = (  # what journey_versions ran before session 39
    "SELECT started_version_id, count(*) FROM enrollment WHERE journey_id = :journey "
    "GROUP BY started_version_id"
)


def seed(engine: Engine, journeys: int, per_journey: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE enrollment DROP CONSTRAINT enrollment_customer_id_fkey")
        )
        connection.execute(
            text(
                "INSERT INTO journey_version (journey_id, number, content_hash, yaml_text, "
                "templates, seen_at) SELECT 'j' || j, n, md5(j || '-' || n), 'x', '{}', :now "
                "FROM generate_series(1, :journeys) AS j, generate_series(1, :versions) AS n "
                "ORDER BY j, n"
            ),
            {"now": now, "journeys": journeys, "versions": VERSIONS},
        )
        connection.execute(
            text(
                "INSERT INTO enrollment (customer_id, journey_id, entry_key, state, anchor_at, "
                "created_at, counted, started_version_id, version_id) "
                "SELECT c, 'j' || j, 'signup', "
                "CASE WHEN c % 20 = 0 THEN 'active' ELSE 'completed' END, :now, :now, "
                "CASE WHEN c % 1000 = 7 THEN 0 ELSE 1 END, "
                "(j - 1) * :versions + 1 + c % :versions, (j - 1) * :versions + 1 + c % :versions "
                "FROM generate_series(1, :per_journey) AS c, generate_series(1, :journeys) AS j"
            ),
            {"now": now, "journeys": journeys, "versions": VERSIONS, "per_journey": per_journey},
        )
        connection.execute(
            text(
                "INSERT INTO journey_version_starts (version_id, enrollments) "
                "SELECT started_version_id, count(*) FROM enrollment WHERE counted <> 0 "
                "GROUP BY started_version_id"
            )
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE enrollment")
        )


def median_ms(run: Callable[[], object], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--journeys", type=int, default=5)
    parser.add_argument("--per-journey", type=int, default=400_000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    engine = prepare_database(args.database_url)
    started = time.perf_counter()
    seed(engine, args.journeys, args.per_journey)
    total = args.journeys * args.per_journey
    print(f"seeded {total:,} enrollments in {time.perf_counter() - started:.0f} s")
    journey = "j2"
    with engine.connect() as connection:
        old = median_ms(lambda: connection.execute(text(OLD_COUNT), {"journey": journey}).all())
        new = median_ms(lambda: version_starts(connection, journey))
        rows = connection.execute(text(OLD_COUNT), {"journey": journey})
        expected = {version: n for version, n in rows}
        assert version_starts(connection, journey) == expected  # same answer
    whole = median_ms(lambda: journey_versions(engine, journey))
    print(f"who started on each version, {args.per_journey:,} enrollments of the journey:")
    print(f"  every enrollment counted (before): {old:8.2f} ms")
    print(f"  kept starts + not counted yet:     {new:8.2f} ms")
    print(
        f"journey_versions (with who follows each, {args.per_journey // 20:,} open): {whole:.2f} ms"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
