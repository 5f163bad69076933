"""How fast a journey's funnel answers, and what keeping its rollups costs, on PostgreSQL.

Seeds ``--sends`` scheduled sends (default 1,000,000) for ``--sends / 10`` customers, as the
issue sizes it (10 million sends for 1 million customers): each customer is enrolled in
onboarding (7 steps) and three one-step journeys, the sends spread over ``--days`` days
(default 365) with realistic outcomes (sent, skipped by each reason, missed, failed,
cancelled) and engagement bits. Then:

1. the rollup job counts every row once (what ``stepmail analytics rebuild`` does after an
   upgrade): rows per second, beside what a bare UPDATE of 10,000 sends costs here (every
   counted row is marked, so no count can beat that);
2. an incremental pass after 20,000 sends spread over the year changed (opens, clicks): what
   the periodic job costs per change;
3. the funnel of onboarding for the last 90 days (all tiers and languages, one tier) and for
   random 90-day ranges, ``--runs`` times each (median, p95, max), the overview, the band
   snapshot the scheduler takes every five minutes, and the plan PostgreSQL picks.

Every number is printed with the load average it was taken under (the machine may be
shared); ``--reuse`` measures step 3 again on the database an earlier run left, when the
machine is quieter. A funnel reads ``analytics_daily`` rows for one journey and range (steps
× tiers × languages × days, a few thousand), never the sends; the counting rate is linear in
the rows that changed.

The bench is destructive: it drops and recreates the ``public`` schema of a database whose
name must contain ``bench`` (default ``stepmail_bench``). It prints numbers, asserts nothing.

    .venv/bin/python bench/funnel.py --sends 1000000
    .venv/bin/python bench/funnel.py --sends 10000000      # the issue's size: ~25 min here
    .venv/bin/python bench/funnel.py --reuse --runs 50     # the reads again, same database
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench_db import prepare_database
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from orchestrator.clock import FrozenClock
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.journeys.loader import load_journeys
from orchestrator.services.analytics import (
    AnalyticsRules,
    journey_funnel,
    overview,
    refresh_band_snapshot,
    refresh_rollups,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
ONBOARDING = ("welcome", "basics", "next_steps", "faq", "activation_nudge", "case_studies")
OTHERS = (("health_tips", "tips"), ("health_upsell", "upsell"), ("csm_introduction", "intro"))

CUSTOMERS = text("""
    INSERT INTO customer (external_id, public_id, email, name, company, plan,
        annual_contract_value, currency, locale, timezone, tier, tier_explicit,
        attributes, signed_up_at, created_at, updated_at)
    SELECT 'c' || g, 'p' || g, 'c' || g || '@customer.example', 'Customer ' || g,
        'Company ' || g, 'business', 0, 'JPY', (ARRAY['ja', 'en'])[1 + (g / 3) % 2],
        'Asia/Tokyo', (ARRAY['high', 'low', 'tech'])[1 + g % 3], false, CAST('{}' AS json),
        :start + (g % :days) * interval '1 day', :start, :start
    FROM generate_series(1, :count) AS g
""")
# Health bands as the daily health job leaves them: most scored, some not yet.
BANDS = text("""
    UPDATE customer SET health_band = (ARRAY['green', 'green', 'yellow', 'red', NULL])[1 + id % 5],
        health_score = 100 - (id % 5) * 20
""")
# The secondary indexes of the big tables are dropped while seeding and built afterwards
# (one sort each instead of ten million insertions); constraints stay.
SECONDARY_INDEXES = text("""
    SELECT i.indexname, i.indexdef FROM pg_indexes AS i
    WHERE i.schemaname = 'public' AND i.tablename IN ('scheduled_send', 'enrollment')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conname = i.indexname)
""")
ENROLLMENTS = text("""
    INSERT INTO enrollment (customer_id, journey_id, entry_key, state, anchor_at, created_at)
    SELECT c.id, j.journey_id, 'bench', CASE WHEN c.id % 9 = 0 THEN 'converted' ELSE 'active'
        END, c.signed_up_at, c.signed_up_at
    FROM customer c CROSS JOIN unnest(CAST(:journeys AS text[])) AS j(journey_id)
""")
# Per enrollment its steps; every outcome the funnel shows, in realistic shares, and for
# sent mails engagement bits (delivered 1, opened 2, clicked 4, bounced 8, unsubscribed 16,
# converted 32, scanner 64).
SENDS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id, due_at,
        wake_at, state, attempts, dispatches, reason, sent_at, updated_at, open_count,
        click_count, engagement)
    SELECT e.id, e.customer_id, e.journey_id, s.step_id, at, at, state, 1, 1,
        CASE state WHEN 'skipped' THEN (ARRAY['step is not for tier low',
            'address suppressed (bounce)', 'customer opted out', 'condition false: x'])[
            1 + (e.id % 4)] END,
        CASE WHEN state = 'sent' THEN at END, at, 0, 0,
        CASE WHEN state = 'sent' THEN
            (CASE WHEN r < 0.97 THEN 1 ELSE 8 END) | (CASE WHEN r < 0.45 THEN 2 ELSE 0 END)
            | (CASE WHEN r < 0.12 THEN 4 ELSE 0 END) | (CASE WHEN r > 0.995 THEN 16 ELSE 0 END)
            | (CASE WHEN r < 0.02 THEN 32 ELSE 0 END) | (CASE WHEN r > 0.9 THEN 64 ELSE 0 END)
        ELSE 0 END
    FROM (
        SELECT e.id, e.customer_id, e.journey_id, e.anchor_at, random() AS r
        FROM enrollment e
    ) AS e
    CROSS JOIN LATERAL (
        SELECT step_id FROM unnest(CASE e.journey_id WHEN 'onboarding'
            THEN CAST(:onboarding AS text[]) ELSE ARRAY[:other_step] END) AS u(step_id)
    ) AS s
    CROSS JOIN LATERAL (
        SELECT e.anchor_at + (random() * 20) * interval '1 day' AS at,
            CASE WHEN e.r < 0.82 THEN 'sent' WHEN e.r < 0.90 THEN 'skipped'
                 WHEN e.r < 0.92 THEN 'missed' WHEN e.r < 0.93 THEN 'failed'
                 ELSE 'cancelled' END AS state
    ) AS o
""")
TOUCH = text("""
    UPDATE scheduled_send SET engagement = engagement | 2 | 4
    WHERE id IN (SELECT id FROM scheduled_send WHERE state = 'sent' ORDER BY random() LIMIT :n)
""")


def seed(engine: Engine, sends: int, days: int, start: datetime) -> int:
    customers = max(1, sends // (len(ONBOARDING) + len(OTHERS)))
    journeys = ["onboarding", *(journey for journey, _ in OTHERS)]
    with engine.begin() as connection:
        indexes = list(connection.execute(SECONDARY_INDEXES))
        for name, _ in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
        connection.execute(CUSTOMERS, {"count": customers, "start": start, "days": days})
        connection.execute(BANDS)
        connection.execute(ENROLLMENTS, {"journeys": journeys})
        connection.execute(SENDS, {"onboarding": list(ONBOARDING), "other_step": "one"})
        connection.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            connection.execute(text(definition))
        total = int(connection.execute(text("SELECT count(*) FROM scheduled_send")).scalar_one())
    vacuum(engine)
    return total


def vacuum(engine: Engine) -> None:
    """What autovacuum does in steady state, done now so every measure starts from it."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def load() -> str:
    """The machine is shared: every number is printed with the load it was taken under."""
    one, five, _ = os.getloadavg()
    return f"[load {one:.2f}, {five:.2f}]"


def bare_update_ms(engine: Engine, rows: int = 10_000) -> float:
    """What PostgreSQL here takes to rewrite ``rows`` sends at all (rolled back): the floor
    under any count that marks each row it counted."""
    with engine.connect() as connection:
        transaction = connection.begin()
        began = time.perf_counter()
        connection.execute(
            text(
                "UPDATE scheduled_send SET counted_engagement = counted_engagement + 1 "
                "WHERE id IN (SELECT id FROM scheduled_send ORDER BY id DESC LIMIT :n)"
            ),
            {"n": rows},
        )
        took = (time.perf_counter() - began) * 1000
        transaction.rollback()
    return took


def timed(runs: int, call: object) -> list[float]:
    assert callable(call)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database seeded and counted by an earlier run (migrated to the head): "
        "measure the reads only, e.g. again when the machine is quieter",
    )
    args = parser.parse_args()

    start = datetime(2026, 1, 1, tzinfo=UTC)
    last_day = (start + timedelta(days=args.days + 20)).date()
    clock = FrozenClock(datetime(last_day.year, last_day.month, last_day.day, 12, tzinfo=UTC))
    journeys = load_journeys(ROOT / "journeys")
    rules = AnalyticsRules(journeys=journeys, timezone="Asia/Tokyo")
    if args.reuse:
        engine = reuse_database(args.database_url)
        refresh_rollups(engine, rules=rules, batches=None)
    else:
        engine = prepare_database(args.database_url)
        count_everything(engine, rules, args.sends, args.days, start)
    measure_reads(engine, rules, clock, last_day, args.runs)


def reuse_database(url: str) -> Engine:
    if "bench" not in (make_url(url).database or ""):
        raise SystemExit("refusing: the database name must contain 'bench'")
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        sends = connection.execute(text("SELECT count(*) FROM scheduled_send")).scalar_one()
    print(f"reusing {sends:,} sends seeded and counted by an earlier run {load()}")
    return engine


def count_everything(
    engine: Engine, rules: AnalyticsRules, sends: int, days: int, start: datetime
) -> None:
    began = time.perf_counter()
    total = seed(engine, sends, days, start)
    print(f"seeded {total:,} sends over {days} days in {time.perf_counter() - began:.0f} s")

    floor = bare_update_ms(engine)
    began = time.perf_counter()
    report = refresh_rollups(engine, rules=rules, batches=None)
    took = time.perf_counter() - began
    line = (
        f"first count: {report.sends:,} sends and {report.enrollments:,} enrollments in "
        f"{took:.1f} s ({report.rows / took:,.0f} rows/s) {load()}"
    )
    if report.sends < 9_500_000:
        minutes = 10_000_000 / max(report.sends, 1) * took / 60
        line += f"; extrapolated to 10,000,000 sends: {minutes:.1f} min, once"
    print(line)
    print(
        f"  (a bare UPDATE of 10,000 sends here: {floor:.0f} ms, "
        f"{10_000 / floor * 1000:,.0f} rows/s: the floor under marking each counted row)"
    )
    with engine.connect() as connection:
        rollup_rows = connection.execute(text("SELECT count(*) FROM analytics_daily")).scalar()
    print(f"analytics_daily holds {rollup_rows:,} rows")
    vacuum(engine)  # the first count rewrote every row; autovacuum would clean up after it

    with engine.begin() as connection:
        connection.execute(TOUCH, {"n": 20_000})
    began = time.perf_counter()
    again = refresh_rollups(engine, rules=rules, batches=None)
    took = time.perf_counter() - began
    print(
        f"incremental pass after {again.sends:,} sends changed: {took * 1000:.0f} ms "
        f"({again.sends / took:,.0f} changes/s; the job runs every 10 s) {load()}"
    )
    vacuum(engine)


def measure_reads(
    engine: Engine, rules: AnalyticsRules, clock: FrozenClock, last_day: date, runs: int
) -> None:
    date_to = last_day
    date_from: date = date_to - timedelta(days=89)
    days = (date_to - date(2026, 1, 1)).days - 89
    shuffled = random.Random(7)

    def funnel(tier: str | None = None, start: date = date_from) -> object:
        end = start + timedelta(days=89)
        return journey_funnel(engine, "onboarding", start, end, tier=tier, rules=rules, clock=clock)

    def any_range() -> object:
        return funnel(start=date(2026, 1, 1) + timedelta(days=shuffled.randrange(days)))

    funnel()  # warm: connection pool, plans, caches
    all_times = timed(runs, funnel)
    one_tier = timed(runs, lambda: funnel("low"))
    ranges = timed(runs, any_range)
    views = timed(max(5, runs // 3), lambda: overview(engine, rules=rules, clock=clock))
    result = funnel()
    sent = sum(step.counts.sent for step in result.steps)  # type: ignore[attr-defined]
    print(f"funnel, onboarding, 90 days ({date_from} to {date_to}), {sent:,} mails sent in it:")
    print(f"  all tiers and languages: {summary(all_times)} {load()}")
    print(f"  tier low only:           {summary(one_tier)} {load()}")
    print(f"  random 90-day ranges:    {summary(ranges)} {load()}")
    print(f"overview (30 days, backlog, bands): {summary(views)} {load()}")
    began = time.perf_counter()
    snapshot = refresh_band_snapshot(engine, rules=rules, now=clock.now())
    print(
        f"health-band snapshot (the periodic job, {sum(snapshot.values()):,} customers): "
        f"{(time.perf_counter() - began) * 1000:.0f} ms {load()}"
    )
    with engine.connect() as connection:
        plan = connection.execute(
            text(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT step_id, tier, locale, sum(sent) "
                "FROM analytics_daily WHERE journey_id = 'onboarding' "
                "AND day BETWEEN :a AND :b GROUP BY step_id, tier, locale"
            ),
            {"a": date_from, "b": date_to},
        ).scalars()
        print("plan:", " | ".join(line.strip() for line in list(plan)[:4]))


if __name__ == "__main__":
    main()
