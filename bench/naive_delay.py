"""Side by side on the same Redis: Stepmail's durable schedule against one Dramatiq message
per journey step held with ``delay=`` (``naive_actor.py``).

Both get the same load: ``--future`` steps due in 30 days are scheduled first, then ``--due``
steps due within seconds; each design then has ``--window`` seconds, on the same worker
shape (``--processes`` × ``--threads``). Printed per design: due mails sent within the
window, when the last one went, and worker memory; then the ratio.

Why the naive design stalls: a Dramatiq worker holds delayed messages in its own memory until
their eta, at most ``threads × 1,000`` of them, fetched in queue order. With more far-future
steps than that queued first, the prefetch fills with messages that are not due for a month
and the due ones behind them are never fetched; the memory they hold grows with the backlog.
Stepmail keeps the schedule in PostgreSQL and the scheduler claims what is due through a
partial index, so a future step costs a worker nothing.

    .venv/bin/python bench/naive_delay.py                         # 20,000 future, 500 due, 60 s
    .venv/bin/python bench/naive_delay.py --future 100000 --due 2000 --redis-url redis://…/9

The bench database (name must contain ``bench``) is rebuilt and the Redis database flushed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from bench_db import analyze, prepare_database, reset, restamp_due, seed_due, seed_pending
from end_to_end import QUEUE, BenchConfig, TimedDispatcher, running_workers, warm_up
from naive_actor import EARLY_KEY, SENT_KEY
from proc_stats import ProcStats, child_pids, stats_of, wait_quiet
from provider import FakeSendGridProcess
from sqlalchemy import Engine

from orchestrator.scheduling.broker import BrokerDispatcher, make_broker
from orchestrator.services.scheduling import tick
from orchestrator.settings import load_settings

BENCH = Path(__file__).resolve().parent
DAY_MS = 24 * 3600 * 1000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    design: str
    sent: int
    due: int
    last_sent_at: float | None  # seconds from the window's start
    workers: list[ProcStats]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--future", type=int, default=20_000, help="steps due in 30 days")
    parser.add_argument("--due", type=int, default=500, help="steps due within seconds")
    parser.add_argument("--due-in", type=float, default=2.0, help="seconds until they are due")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--database-url", default="postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    return parser.parse_args(argv)


# -- the naive design ------------------------------------------------------------------------


def run_naive(args: argparse.Namespace, log: Path) -> Outcome:
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    os.environ["NAIVE_REDIS_URL"] = args.redis_url
    sys.path.insert(0, str(BENCH))
    import naive_actor  # the same broker and actor the workers import

    started = time.perf_counter()
    for n in range(args.future):
        naive_actor.send_step.send_with_options(args=(n, "feedback", False), delay=30 * DAY_MS - n)
    for n in range(args.due):
        naive_actor.send_step.send_with_options(
            args=(n, "welcome", True), delay=int(args.due_in * 1000)
        )
    print(
        f"naive: {args.future:,} + {args.due:,} delayed messages queued in "
        f"{time.perf_counter() - started:.1f} s"
    )
    command = [str(Path(sys.executable).parent / "dramatiq"), "naive_actor"]
    command += ["--processes", str(args.processes), "--threads", str(args.threads)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=BENCH,
            env={**os.environ, "NAIVE_REDIS_URL": args.redis_url},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Worker process is ready") < args.processes:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"naive workers did not start; see {log}")
            time.sleep(0.05)
        window_start = time.perf_counter()
        last, sent = None, 0
        while time.perf_counter() - window_start < args.window and sent < args.due:
            now_sent = int(client.get(SENT_KEY) or 0)
            if now_sent > sent:
                sent, last = now_sent, time.perf_counter() - window_start
            time.sleep(0.1)
        workers = [stats_of(pid) for pid in child_pids(process.pid)]
        early = int(client.get(EARLY_KEY) or 0)
        if early:
            print(f"naive: {early} far-future steps ran early (a bench error)")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # its in-memory messages are lost: a bench
        process.wait()
        client.flushdb()
        client.close()
    return Outcome("one message per step, delay=", sent, args.due, last, workers)


# -- Stepmail --------------------------------------------------------------------------------


def run_stepmail(args: argparse.Namespace, engine: Engine, log_dir: Path) -> Outcome:
    config = BenchConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        mails=args.due,
        pending=(args.future,),
        pending_mails=args.due,
        processes=args.processes,
        threads=args.threads,
        validating_fake=False,
        log_dir=log_dir,
    )
    settings = load_settings(
        database_url=args.database_url, redis_url=args.redis_url, queue_name=QUEUE
    )
    reset(engine, args.redis_url)
    now = datetime.now(UTC)
    seed_pending(engine, args.future, now)
    seed_due(engine, args.due, now)
    analyze(engine)
    broker = make_broker(settings)
    timed = TimedDispatcher(BrokerDispatcher(broker, QUEUE))
    fake = FakeSendGridProcess("SG.bench", validating=False)
    lease = timedelta(seconds=settings.send_lease)
    try:
        with running_workers(config, fake.url, log_dir / "stepmail-workers.log") as main_pid:
            warm_up(timed.inner, args.redis_url, args.processes * args.threads * 4)
            wait_quiet(main_pid)
            restamp_due(engine, datetime.now(UTC) + timedelta(seconds=args.due_in))
            window_start = next_tick = time.perf_counter()
            last, sent = None, 0
            while time.perf_counter() - window_start < args.window and sent < args.due:
                if time.perf_counter() >= next_tick:
                    tick(engine, timed, datetime.now(UTC), settings.dispatch_batch_size, lease)
                    next_tick = time.perf_counter() + settings.dispatch_interval
                time.sleep(0.01)
                accepted = fake.stats().accepted
                if accepted > sent:
                    sent, last = accepted, time.perf_counter() - window_start
            workers = [stats_of(pid) for pid in child_pids(main_pid)]
    finally:
        fake.stop()
        broker.close()
    return Outcome("Stepmail (durable schedule)", sent, args.due, last, workers)


def describe(outcome: Outcome, args: argparse.Namespace) -> None:
    rss = ", ".join(f"{w.rss / MIB:.0f} MiB (peak {w.peak / MIB:.0f})" for w in outcome.workers)
    when = f"last at {outcome.last_sent_at:.1f} s" if outcome.last_sent_at is not None else "none"
    print(
        f"{outcome.design:<30} sent {outcome.sent:>6,} of {outcome.due:,} due within "
        f"{args.window:.0f} s ({when}); worker RSS {rss}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="stepmail-naive-"))
    print(
        f"{args.future:,} steps due in 30 days queued first, then {args.due:,} due in "
        f"{args.due_in:g} s; {args.processes} worker process(es) x {args.threads} threads; "
        f"redis {args.redis_url}; load average {os.getloadavg()[0]:.1f}; logs in {log_dir}"
    )
    engine = prepare_database(args.database_url)
    try:
        stepmail = run_stepmail(args, engine, log_dir)
    finally:
        engine.dispose()
    naive = run_naive(args, log_dir / "naive-workers.log")
    describe(stepmail, args)
    describe(naive, args)
    if naive.sent:
        print(f"ratio of due mails sent in the window: {stepmail.sent / naive.sent:.1f}x")
    else:
        print(f"ratio: Stepmail sent {stepmail.sent:,}, the naive design none (unbounded)")


if __name__ == "__main__":
    main()
