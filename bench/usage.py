"""Usage benchmark on PostgreSQL: how fast events go in through the HTTP API, and what the
daily health recompute costs as the customer base grows while the changed customers stay few.

1. Ingestion: a real uvicorn server (one process) on loopback; events are posted one per
   request and in batches of 1,000, each with its own id, to customers who all have an
   onboarding enrollment, with the health score recomputed in the same transaction (the
   production path). Prints events per second.
2. Daily recompute: customers are bulk-loaded with COPY to 10k, 100k and 1M. Every customer
   has background events 40-60 days old (outside every window slice); a fixed number of
   customers have logins that leave the 14-day window today. ``run_daily_health`` must read only
   those: rows examined and time should stay flat as customers grow.

    su postgres -c "createdb -O stepmail stepmail_bench_c"     # once
    .venv/bin/python bench/usage.py                            # full: up to 1M customers
    .venv/bin/python bench/usage.py --quick                    # up to 100k, fewer events

It prints numbers and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import Engine, text

from orchestrator.api.app import create_app
from orchestrator.clock import SystemClock
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.health.loader import load_health
from orchestrator.runtime import build_runtime
from orchestrator.services.health import run_daily_health
from orchestrator.settings import Settings, load_settings
from orchestrator.transports.outbox import OutboxTransport

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_c"
API_KEY = "bench-api-key"
TABLES = (
    "csm_task, health_action, health_score_history, usage_event, delivery_attempt, "
    "scheduled_send, enrollment, consent_record, subscription_preference, customer"
)
CUSTOMER_COLUMNS = (
    "external_id, public_id, email, name, company, plan, annual_contract_value, currency, "
    "locale, timezone, tier, tier_explicit, attributes, signed_up_at, created_at, updated_at"
)
EVENT_COLUMNS = "customer_id, name, event_key, occurred_at, received_at, properties"


def settings_for(url: str, outbox: Path) -> Settings:
    return load_settings(
        database_url=url,
        api_key=API_KEY,
        journeys_dir=ROOT / "journeys",
        templates_dir=ROOT / "templates" / "mail",
        outbox_dir=outbox,
    )


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


def copy_customers(engine: Engine, first: int, last: int, now: datetime) -> None:
    """Customers ``bench-<first>`` … ``bench-<last - 1>``, signed up 90 days ago, via COPY."""
    signed_up = now - timedelta(days=90)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY customer ({CUSTOMER_COLUMNS}) FROM STDIN") as copy:
            for n in range(first, last):
                copy.write_row(
                    (
                        f"bench-{n}",
                        f"p{n}-{secrets.token_hex(4)}",
                        f"c{n}@bench.example",
                        f"Customer {n}",
                        "",
                        "business",
                        360000,
                        "JPY",
                        "ja",
                        "Asia/Tokyo",
                        "low",
                        False,
                        "{}",
                        signed_up,
                        signed_up,
                        signed_up,
                    )
                )
        raw.commit()
    finally:
        raw.close()


def copy_events(engine: Engine, rows: Iterator[tuple[object, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY usage_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def background_events(
    first: int, last: int, per: int, now: datetime
) -> Iterator[tuple[object, ...]]:
    """``per`` events per customer, 40-60 days old: outside every slice the daily job reads."""
    names = ("login", "report_created", "support_ticket_opened")
    for customer_id in range(first + 1, last + 1):
        for k in range(per):
            at = now - timedelta(days=40 + (customer_id * 7 + k * 3) % 20, minutes=k)
            yield (customer_id, names[k % 3], f"bg-{k}", at, at, "{}")


def changed_events(count: int, now: datetime) -> Iterator[tuple[object, ...]]:
    """Three logins each for ``count`` customers, leaving the 14-day window within the day."""
    for customer_id in range(1, count + 1):
        for k in range(3):
            at = now - timedelta(days=14, hours=1 + (customer_id + k) % 20)
            yield (customer_id, "login", f"leaving-{k}", at, at, "{}")


def analyze(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ANALYZE customer"))
        connection.execute(text("ANALYZE usage_event"))


def bench_daily(url: str, steps: list[int], per: int, changed: int) -> None:
    engine = make_engine(url)
    reset(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    definition = load_health(ROOT / "journeys" / "health.yaml")
    settings = settings_for(url, Path("/tmp/stepmail-bench-usage-outbox"))
    runtime = build_runtime(settings, transport=OutboxTransport(settings.outbox_dir))
    rules = replace(runtime.usage_rules(), health=definition)
    loaded = 0
    print(f"\n== daily recompute: {changed} changed customers, {per} background events each ==")
    print(
        f"{'customers':>10} {'events':>11} {'load s':>8} {'candidates':>10} "
        f"{'rows read':>10} {'recompute s':>12} {'repeat s':>9}"
    )
    for target in steps:
        started = time.perf_counter()
        copy_customers(engine, loaded, target, now)
        copy_events(engine, background_events(loaded, target, per, now))
        if loaded == 0:
            copy_events(engine, changed_events(changed, now))
        loaded = target
        analyze(engine)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = run_daily_health(engine, rules=rules, until=now)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        run_daily_health(engine, rules=rules, until=now)  # again: nothing moved
        repeat = time.perf_counter() - started
        with engine.connect() as connection:
            events = connection.execute(text("SELECT count(*) FROM usage_event")).scalar_one()
        print(
            f"{target:>10,} {events:>11,} {load_seconds:>8.1f} {report.candidates:>10,} "
            f"{report.rows_examined:>10,} {seconds:>12.3f} {repeat:>9.3f}"
        )
    runtime.close()
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    runtime = build_runtime(
        settings, clock=SystemClock(), transport=OutboxTransport(settings.outbox_dir)
    )
    port = free_port()
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        runtime.close()


def bench_ingest(url: str, customers: int, singles: int, batches: int) -> None:
    engine = make_engine(url)
    reset(engine)
    now = datetime.now(UTC)
    copy_customers(engine, 0, customers, now)
    with engine.begin() as connection:  # everyone is in the onboarding journey
        connection.execute(
            text(
                "INSERT INTO enrollment"
                " (customer_id, journey_id, entry_key, state, anchor_at, created_at)"
                " SELECT id, 'onboarding', 'signup', 'active', signed_up_at, signed_up_at"
                " FROM customer"
            )
        )
    analyze(engine)
    engine.dispose()
    settings = settings_for(url, Path("/tmp/stepmail-bench-usage-outbox"))
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    print(f"\n== ingestion through the API ({customers:,} customers, health score on) ==")
    with (
        api_server(settings) as base,
        httpx.Client(base_url=base, headers=headers, timeout=120) as http,
    ):
        for phase in ("cold", "warm"):
            post_singles(http, phase, singles, customers)
            post_batches(http, phase, batches, customers)
        replay = [  # exactly the first warm batch again: every event is a duplicate
            {"external_id": f"bench-{k % customers}", "name": NAMES[k % 5], "id": f"warm-b0-{k}"}
            for k in range(1000)
        ]
        started = time.perf_counter()
        http.post("/v1/events", content=json.dumps({"events": replay}))
        took = 1000 * (time.perf_counter() - started)
        print(f"replayed batch of 1,000 (all duplicates): {took:.0f} ms")


NAMES = ("login", "report_created", "login", "workflow_created", "login")


def post_singles(http: httpx.Client, phase: str, count: int, customers: int) -> None:
    """cold: each customer's first scored event (band actions fire); warm: ordinary traffic."""
    started = time.perf_counter()
    for n in range(count):
        body = {"external_id": f"bench-{n % customers}", "name": NAMES[n % 5], "id": f"{phase}{n}"}
        assert http.post("/v1/events", content=json.dumps(body)).status_code == 202
    seconds = time.perf_counter() - started
    print(
        f"{phase} single:  {count:>7,} events {seconds:7.2f} s = {count / seconds:7,.0f} events/s"
        f"  ({1000 * seconds / count:.1f} ms per request)"
    )


def post_batches(http: httpx.Client, phase: str, count: int, customers: int) -> None:
    started = time.perf_counter()
    for b in range(count):
        events = [
            {
                "external_id": f"bench-{(b * 1000 + k) % customers}",
                "name": NAMES[k % 5],
                "id": f"{phase}-b{b}-{k}",
            }
            for k in range(1000)
        ]
        response = http.post("/v1/events", content=json.dumps({"events": events}))
        assert response.status_code == 202, response.text
    seconds = time.perf_counter() - started
    total = count * 1000
    print(
        f"{phase} batched: {total:>7,} events {seconds:7.2f} s = {total / seconds:7,.0f} events/s"
        f"  ({1000 * seconds / count:.0f} ms per batch of 1,000)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--changed", type=int, default=1000, help="customers whose score moves")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-daily", action="store_true")
    args = parser.parse_args()
    upgrade(args.database_url)
    if not args.skip_ingest:
        bench_ingest(
            args.database_url, 10_000, 500 if args.quick else 2_000, 5 if args.quick else 20
        )
    if not args.skip_daily:
        steps = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
        bench_daily(args.database_url, steps, 2 if args.quick else 3, args.changed)


if __name__ == "__main__":
    main()
