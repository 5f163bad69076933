"""Journey versions benchmark on PostgreSQL: what ``stepmail plan`` and applying a change
cost as the customers in flight grow.

A journey ``flow`` (welcome 0d, basics 2d, faq 3d, legacy_tips 6d) is recorded as version 1;
then N enrollments on it are bulk-loaded with server-side SQL, anchored evenly over the last
ten days (so some are past a step, some not), with one row per step (``sent`` when due
already, ``pending`` otherwise). The change: faq 3d → 4d, a new step webinar_invite at 5d,
legacy_tips removed. The bench times the plan (read-only, as ``stepmail plan``), then the
apply (one transaction under the journey's lock, as a process does), and prints the plan's
numbers and the apply's.

    su postgres -c "createdb -O stepmail stepmail_bench_versions"     # once
    .venv/bin/python bench/versions.py                                  # 10k, 100k
    .venv/bin/python bench/versions.py --sizes 1000                     # quick

It prints numbers and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_db import analyze, prepare_database
from sqlalchemy import Engine, text

from orchestrator.clock import FrozenClock
from orchestrator.db.engine import make_engine
from orchestrator.services.journey_catalog import read_journey_contents
from orchestrator.services.journey_versions import plan_changes, sync_journey

ROOT = Path(__file__).resolve().parents[1]
FLOW = """\
id: flow
name: Flow
grace: 24h
vars: {product_name: Relay, app_url: "https://app.relay.example"}
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
  - id: basics
    after: 2d
    template: onboarding/basics
  - id: faq
    after: 3d
    template: onboarding/faq
  - id: legacy_tips
    after: 6d
    template: onboarding/next_steps
"""
CHANGED = (
    FLOW.replace("after: 3d", "after: 4d")
    .replace("grace: 24h\n", "grace: 24h\nremoved_steps:\n  legacy_tips: replaced by the webinar\n")
    .replace(
        "  - id: legacy_tips\n    after: 6d\n    template: onboarding/next_steps\n",
        "  - id: webinar_invite\n    after: 5d\n    template: onboarding/faq\n",
    )
)
OFFSETS = {"welcome": 0, "basics": 2, "faq": 3, "legacy_tips": 6}

SEED = text("""
    WITH c AS (
        INSERT INTO customer (external_id, public_id, email, name, company, plan,
            annual_contract_value, currency, locale, timezone, tier, tier_explicit,
            attributes, signed_up_at, created_at, updated_at)
        SELECT 'c' || g, 'pub-c' || g, 'c' || g || '@customer.example', 'Customer ' || g, '',
            'business', 30000, 'JPY', 'ja', 'Asia/Tokyo', 'tech', false, CAST('{}' AS json),
            CAST(:now AS timestamptz) - (g % 10) * interval '1 day' - (g % 24) * interval '1 hour',
            :now, :now
        FROM generate_series(1, :count) AS g
        RETURNING id, signed_up_at
    )
    INSERT INTO enrollment (customer_id, journey_id, entry_key, state, anchor_at, created_at,
        started_version_id, version_id)
    SELECT id, 'flow', 'signup', 'active', signed_up_at, :now, :version, :version FROM c
""")
SEED_ROWS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id,
        due_at, wake_at, state, attempts, dispatches, open_count, click_count, updated_at)
    SELECT e.id, e.customer_id, 'flow', s.step_id,
        e.anchor_at + s.days * interval '1 day', e.anchor_at + s.days * interval '1 day',
        CASE WHEN e.anchor_at + s.days * interval '1 day' <= :now THEN 'sent' ELSE 'pending' END,
        0, 0, 0, 0, :now
    FROM enrollment e
    CROSS JOIN unnest(CAST(:steps AS text[]), CAST(:days AS int[])) AS s(step_id, days)
""")


def run(engine: Engine, url: str, count: int, folder: Path) -> None:
    now = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    clock = FrozenClock(now)
    journeys, templates = folder / "journeys", ROOT / "templates" / "mail"
    journeys.mkdir(exist_ok=True)
    with engine.begin() as connection:
        tables = "scheduled_send, enrollment, customer, journey_current, journey_version"
        connection.execute(text(f"TRUNCATE {tables}, snapshot_file RESTART IDENTITY CASCADE"))
    (journeys / "flow.yaml").write_text(FLOW, "utf-8")
    contents, _ = read_journey_contents(journeys, templates, "ja")
    first = sync_journey(engine, *contents["flow"], clock=clock)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(SEED, {"now": now, "count": count, "version": first.version.id})
        connection.execute(
            SEED_ROWS,
            {"now": now, "steps": list(OFFSETS), "days": list(OFFSETS.values())},
        )
    analyze(engine)
    seeded = time.perf_counter() - started
    (journeys / "flow.yaml").write_text(CHANGED, "utf-8")
    contents, _ = read_journey_contents(journeys, templates, "ja")
    reader = make_engine(url, read_only=True)
    started = time.perf_counter()
    (pending,) = plan_changes(reader, contents, now=now)
    planned = time.perf_counter() - started
    reader.dispose()
    started = time.perf_counter()
    outcome = sync_journey(engine, *contents["flow"], clock=clock)
    applied = time.perf_counter() - started
    print(f"\n{count:,} enrollments in flight ({count * 4:,} rows; seeded in {seeded:.1f} s)")
    print(f"  plan  (read-only): {planned * 1000:8.0f} ms")
    for line in pending.lines():
        print(f"      {line}")
    print(f"  apply ({outcome.status}): {applied * 1000:8.0f} ms")
    assert outcome.report is not None
    for group in outcome.report["groups"]:
        print(f"      {dict(group)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_versions",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    engine = prepare_database(args.database_url)
    folder = Path(tempfile.mkdtemp(prefix="stepmail-bench-versions-"))
    try:
        for count in args.sizes:
            run(engine, args.database_url, count, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        engine.dispose()


if __name__ == "__main__":
    main()
