"""The event path in-process, without HTTP: CPU per ``track_events`` call for single events
and for batches of 1,000 over 1,000 customers (each rescored and its lifecycle stage rules
run), with the shipped journeys, health and lifecycle files, on PostgreSQL.

    su postgres -c "createdb -O stepmail stepmail_bench_events"      # once
    .venv/bin/python bench/event_cpu.py
    .venv/bin/python bench/event_cpu.py --singles 500 --batches 5 --profile

CPU is this process's own (``time.process_time``), so it is robust to a busy machine; the
database's own work is not in it. The database name must contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_db import prepare_database, seed_customers
from sqlalchemy import Engine

from orchestrator.runtime import Runtime, build_runtime, settle_heap_for_serving
from orchestrator.services.events import track_events
from orchestrator.settings import load_settings
from orchestrator.usage.events import EventIn, EventSubmission

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_events"
CUSTOMERS = 3_000
BATCH = 1_000
EVENT_NAMES = ("login", "report_created", "login", "workflow_created", "login")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile, cumulative, top 45")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="after the warm-up, settle the heap as a serving process does after start-up "
        "(runtime.settle_heap_for_serving: gc.freeze(), so the collector no longer scans the "
        "objects loaded at start, and young collections every "
        "runtime.YOUNG_COLLECTION_EVERY allocations)",
    )
    args = parser.parse_args(argv)
    gc.callbacks.append(_GC_CLOCK)
    engine = seeded_database(args.database_url)
    runtime = shipped_runtime(args.database_url)
    counter = iter(range(10**9))

    def call(events: list[EventIn], batched: bool) -> None:
        track_events(
            runtime.engine,
            EventSubmission(events, batched),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=lambda _ids: None,
        )

    def single(n: int) -> None:
        name = EVENT_NAMES[n % len(EVENT_NAMES)]
        customer = f"ev-{1 + n % CUSTOMERS}"
        call([EventIn(external_id=customer, name=name, id=f"s-{next(counter)}")], False)

    def batch(n: int) -> None:
        call(batch_events(n, lambda _k: f"b-{next(counter)}"), True)

    try:
        for n in range(20):  # warm: statements prepared, files cached
            single(n)
        if args.gc_freeze:
            settle_heap_for_serving()
        print(f"load average {os.getloadavg()[0]:.1f}; {CUSTOMERS} customers, shipped rules")
        # Every customer once (the seeded ones have no stage yet, and their first rescoring
        # fires the low-usage actions): what the API bench's batches pay, each on new customers.
        measure("first touch, batch of 1000 new customers", batch, CUSTOMERS // BATCH, False)
        measure("single event", single, args.singles, args.profile)
        measure(f"batch of {BATCH} over {BATCH} customers", batch, args.batches, args.profile)
    finally:
        runtime.close()
        engine.dispose()


def seeded_database(url: str) -> Engine:
    """The bench database rebuilt, with ``CUSTOMERS`` customers signed up three days ago."""
    engine = prepare_database(url)
    seed_customers(engine, "ev-", CUSTOMERS, datetime.now(UTC) - timedelta(days=3))
    return engine


def shipped_runtime(url: str) -> Runtime:
    """A runtime on ``url`` with the shipped journeys, health and lifecycle files."""
    settings = load_settings(
        environment="development",
        database_url=url,
        journeys_dir=ROOT / "journeys",
        templates_dir=ROOT / "templates" / "mail",
    )
    return build_runtime(settings)


def batch_events(n: int, id_of: Callable[[int], str]) -> list[EventIn]:
    """The bench's batch ``n``: 1,000 events over 1,000 customers (the next thousand of
    ``CUSTOMERS``, cycling), the k-th with the id ``id_of(k)``."""
    return [
        EventIn(
            external_id=f"ev-{1 + (n * BATCH + k) % CUSTOMERS}",
            name=EVENT_NAMES[k % len(EVENT_NAMES)],
            id=id_of(k),
        )
        for k in range(BATCH)
    ]


class _GCClock:
    """CPU spent in the cyclic garbage collector (gc.callbacks), to tell it from the code's."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.spent += time.process_time() - self._started


_GC_CLOCK = _GCClock()


def measure(label: str, run: Callable[[int], None], count: int, profile: bool) -> None:
    profiler = cProfile.Profile(time.process_time)
    collected = _GC_CLOCK.spent
    started = time.process_time()
    if profile:
        profiler.enable()
    for n in range(count):
        run(n)
    if profile:
        profiler.disable()
    cpu = time.process_time() - started
    in_gc = _GC_CLOCK.spent - collected
    print(
        f"{label}: {1000 * cpu / count:.2f} ms CPU per call ({count} calls; "
        f"of it {1000 * in_gc / count:.2f} ms in the garbage collector)"
    )
    if profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())


if __name__ == "__main__":
    main()
