"""End-to-end benchmark on PostgreSQL + Redis: how many onboarding mails a second go out, how
late, and whether worker memory or the scheduler's claim cost grows with pending steps.

Each phase starts from empty tables, bulk-inserts due rows (and, for the memory phases,
future rows), starts real ``dramatiq workers`` processes against a local SendGrid fake, runs
the real scheduler ``tick`` in this process, and stops the clock when the fake has accepted
every mail. It prints numbers only; nothing here asserts on time.

    .venv/bin/python bench/end_to_end.py --quick
    .venv/bin/python bench/end_to_end.py --workers 4 --threads 2

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import disk_flush
import dramatiq
import host_speed
import redis
from bench_db import (
    DUE_STEP,
    DbCounters,
    Lag,
    analyze,
    check_journey,
    db_counters,
    park_due,
    prepare_database,
    reset,
    restamp_due,
    seed_due,
    seed_pending,
    seed_warm,
    sent_lag,
    state_counts,
)
from proc_stats import (
    CpuSnapshot,
    ProcStats,
    cpu_snapshot,
    parent_pid,
    wait_quiet,
    worker_stats,
)
from provider import FakeSendGridProcess
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from orchestrator.scheduling.broker import BrokerDispatcher, Dispatcher, make_broker
from orchestrator.services.scheduling import claim_due_sends, tick
from orchestrator.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
QUEUE = "bench"
API_KEY = "SG.bench"
WARM_UP_SEND_ID = 0  # no such row: the worker builds its runtime, claims nothing, returns
EMPTY_CLAIM_REPEATS = 20
STALL_SECONDS = 20
# The warm-up's real mails: 100 a worker thread, in messages of 25, so that every thread of
# every process has sent some before the clock starts (a process takes up to 2 × threads
# messages at a time).
WARM_MAILS_A_THREAD = 100
WARM_MESSAGE = 25
MIB = 1024 * 1024


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What the command line chose; one value shared by every phase."""

    database_url: str
    redis_url: str
    mails: int
    pending: tuple[int, ...]
    pending_mails: int
    processes: int
    threads: int
    validating_fake: bool
    log_dir: Path
    provider_latency: float = 0.0  # seconds the stand-in holds each answer
    step: str = DUE_STEP  # the onboarding step whose mails are due
    frequency_cap: str | None = None  # STEPMAIL_FREQUENCY_CAP of the workers
    warm_mails: int = 0  # real mails sent before a phase's clock (0: no-op messages only)
    flush_dir: str | None = None  # where disk_flush.py's probe writes (None: $TMPDIR)


@dataclass(frozen=True)
class Phase:
    """One measurement: ``mails`` rows due now on top of ``pending`` future rows."""

    mails: int
    pending: int


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Full run by default; ``--quick`` shrinks the defaults, explicit flags still win."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="500 mails, 10k pending (<1 min)")
    parser.add_argument("--mails", type=int, help="mails due now in the e2e phase (5000)")
    parser.add_argument(
        "--pending", type=int, nargs="*", help="future rows per memory phase (100000 1000000)"
    )
    parser.add_argument("--pending-mails", type=int, help="mails due now in memory phases (5000)")
    parser.add_argument("--workers", type=int, default=2, help="dramatiq --processes")
    parser.add_argument("--threads", type=int, default=4, help="dramatiq --threads")
    parser.add_argument(
        "--validating-fake",
        action="store_true",
        help="check every payload with the tests' FakeSendGrid (costs ~1.2 ms CPU a mail)",
    )
    parser.add_argument(
        "--provider-latency-ms",
        type=float,
        default=0.0,
        help="the stand-in answers each send after this long, as the real API's round trip",
    )
    parser.add_argument(
        "--step",
        default=DUE_STEP,
        help="the onboarding step that is due (activation_nudge: its condition reads usage)",
    )
    parser.add_argument(
        "--frequency-cap", help="the workers' STEPMAIL_FREQUENCY_CAP, e.g. '1/day,3/week'"
    )
    parser.add_argument(
        "--warm-mails",
        type=int,
        help="real mails each phase sends before its clock starts (default: 100 a worker "
        "thread; 0: no-op messages only, as before session 22)",
    )
    parser.add_argument(
        "--flush-probe-dir",
        help="a directory on the database's disk, for disk_flush.py's probe (default: $TMPDIR)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return BenchConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        mails=_chosen(args.mails, 500 if quick else 5_000),
        pending=tuple(args.pending if args.pending is not None else _default_pending(quick)),
        pending_mails=_chosen(args.pending_mails, 500 if quick else 5_000),
        processes=args.workers,
        threads=args.threads,
        validating_fake=args.validating_fake,
        log_dir=Path(tempfile.mkdtemp(prefix="stepmail-bench-")),
        provider_latency=max(0.0, args.provider_latency_ms) / 1000,
        step=args.step,
        frequency_cap=args.frequency_cap,
        warm_mails=max(
            0, _chosen(args.warm_mails, WARM_MAILS_A_THREAD * args.workers * args.threads)
        ),
        flush_dir=args.flush_probe_dir,
    )


def _chosen(value: int | None, default: int) -> int:
    return default if value is None else value


def _default_pending(quick: bool) -> list[int]:
    return [10_000] if quick else [100_000, 1_000_000]


def phases(config: BenchConfig) -> list[Phase]:
    """The throughput phase first (nothing pending), then one memory phase per pending size."""
    return [Phase(config.mails, 0), *(Phase(config.pending_mails, p) for p in config.pending)]


def scheduler_settings(config: BenchConfig) -> Settings:
    """The settings the bench's own scheduler uses (batch size, lease, tick interval)."""
    return load_settings(
        database_url=config.database_url, redis_url=config.redis_url, queue_name=QUEUE
    )


def worker_env(config: BenchConfig, api_host: str) -> dict[str, str]:
    """What ``dramatiq workers`` reads: the same settings an operator would export."""
    env = {
        "STEPMAIL_ENVIRONMENT": "development",  # the bench's identities are example domains
        "STEPMAIL_DATABASE_URL": config.database_url,
        "STEPMAIL_REDIS_URL": config.redis_url,
        "STEPMAIL_MAIL_TRANSPORT": "sendgrid",
        "STEPMAIL_SENDGRID_API_KEY": API_KEY,
        "STEPMAIL_SENDGRID_API_HOST": api_host,
        "STEPMAIL_QUEUE_NAME": QUEUE,
        "STEPMAIL_JOURNEYS_DIR": str(ROOT / "journeys"),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
        # two connections a sending thread (its hand-overs, a short transaction), as documented
        "STEPMAIL_DB_POOL_SIZE": str(max(20, 2 * config.threads + 2)),
    }
    if config.frequency_cap:
        env["STEPMAIL_FREQUENCY_CAP"] = config.frequency_cap
    return env


# -- the scheduler side ----------------------------------------------------------------------


class TimedDispatcher:
    """Wraps the real dispatcher to split a tick into claim and enqueue time: ``tick`` only
    returns a count, and claim time is what must not grow with pending rows."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self.claim_ms: list[float] = []
        self.enqueue_ms: list[float] = []
        self._mark = time.perf_counter()

    def start_tick(self) -> None:
        self._mark = time.perf_counter()

    def dispatch(self, send_ids: Sequence[int]) -> None:
        started = time.perf_counter()
        self.claim_ms.append((started - self._mark) * 1000)
        self.inner.dispatch(send_ids)
        self._mark = time.perf_counter()
        self.enqueue_ms.append((self._mark - started) * 1000)


def empty_claim_ms(engine: Engine, settings: Settings) -> list[float]:
    """Claim latency when nothing is due: the cost an idle scheduler pays every interval."""
    lease = timedelta(seconds=settings.send_lease)
    timings = []
    for _ in range(EMPTY_CLAIM_REPEATS):
        started = time.perf_counter()
        claimed = claim_due_sends(engine, datetime.now(UTC), settings.dispatch_batch_size, lease)
        timings.append((time.perf_counter() - started) * 1000)
        assert claimed == [], "nothing should be due while measuring an empty claim"
    return timings


@dataclass(frozen=True)
class DriveResult:
    seconds: float
    accepted: int


def drive(
    engine: Engine,
    dispatcher: TimedDispatcher,
    fake: FakeSendGridProcess,
    settings: Settings,
    mails: int,
    already: int = 0,
) -> DriveResult:
    """Tick every ``dispatch_interval`` like ``stepmail scheduler`` until the fake has taken
    ``mails`` mails; returns the wall time from the first tick. Gives up when nothing was
    accepted for ``STALL_SECONDS`` (broken workers), so a failed run ends in seconds."""
    lease = timedelta(seconds=settings.send_lease)
    started = last_progress = next_tick = time.perf_counter()
    accepted = 0
    while accepted < mails and time.perf_counter() - last_progress < STALL_SECONDS:
        if time.perf_counter() >= next_tick:
            dispatcher.start_tick()
            tick(engine, dispatcher, datetime.now(UTC), settings.dispatch_batch_size, lease)
            next_tick = time.perf_counter() + settings.dispatch_interval
        time.sleep(0.005)
        now_accepted = fake.stats().accepted - already
        if now_accepted > accepted:
            accepted, last_progress = now_accepted, time.perf_counter()
    return DriveResult(time.perf_counter() - started, accepted)


def warm_up(dispatcher: Dispatcher, redis_url: str, messages: int, timeout: float = 60) -> None:
    """Send no-op messages so each worker process builds its runtime (journeys, engine,
    HTTP client) before the clock starts; start-up is reported separately."""
    dispatcher.dispatch([WARM_UP_SEND_ID] * messages)
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while client.hlen(f"dramatiq:{QUEUE}.msgs") > 0:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not consume the warm-up messages; see the log")
            time.sleep(0.02)
    finally:
        client.close()


def warm_with_mails(
    engine: Engine,
    config: BenchConfig,
    settings: Settings,
    broker: dramatiq.Broker,
    fake: FakeSendGridProcess,
    timeout: float = 120,
) -> None:
    """Send ``config.warm_mails`` real mails of the phase's step before its clock starts,
    while its own due rows wait: each worker thread then has made its first batches, whose
    one-time work (the statements compiled, the archive's dictionaries read or stored, the
    provider's connections opened) a long-running worker does once, not in every burst."""
    now = datetime.now(UTC)
    park_due(engine, now, config.step)
    seed_warm(engine, config.warm_mails, now, config.step)
    ids = claim_due_sends(engine, now, config.warm_mails, timedelta(seconds=settings.send_lease))
    BrokerDispatcher(broker, QUEUE, WARM_MESSAGE).dispatch(ids)
    deadline = time.monotonic() + timeout
    while fake.stats().accepted < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up's mails were not all sent; see the worker log")
        time.sleep(0.02)


# -- worker processes ------------------------------------------------------------------------


def start_workers(config: BenchConfig, api_host: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``dramatiq workers`` in its own session, so stopping it reaches every child."""
    dramatiq = Path(sys.executable).parent / "dramatiq"
    command = [str(dramatiq), "workers", "--processes", str(config.processes)]
    command += ["--threads", str(config.threads)]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **worker_env(config, api_host)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(process: subprocess.Popen[bytes], log_path: Path, count: int) -> None:
    """Dramatiq logs one "ready for action" line per worker process once it consumes."""
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count("Worker process is ready") < count:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"dramatiq workers did not start; see {log_path}")
        time.sleep(0.05)


def stop_workers(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets Dramatiq finish in-flight messages; SIGKILL if it takes too long.

    SIGTERM goes to Dramatiq's main process only, which passes it on to its worker processes
    (as systemd's ``KillMode=mixed`` and ``docker stop`` do): sent to the whole group, each
    worker process got it twice, and Dramatiq takes a second signal for "kill now", which
    left a batch in hand ``sending`` at the end of every run."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running_workers(config: BenchConfig, api_host: str, log_path: Path) -> Iterator[int]:
    """Yield the main Dramatiq pid once every worker process is ready; always stop them."""
    process = start_workers(config, api_host, log_path)
    try:
        wait_ready(process, log_path, config.processes)
        yield process.pid
    finally:
        stop_workers(process)


# -- one phase -------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """Everything printed for one phase, kept for the closing summary table."""

    phase: Phase
    seed_seconds: float = 0.0
    startup_seconds: float = 0.0
    drive: DriveResult = field(default_factory=lambda: DriveResult(0.0, 0))
    lag: Lag = field(default_factory=lambda: Lag(0, 0.0, 0.0, 0.0))
    empty_claim_ms: list[float] = field(default_factory=list)
    batch_claim_ms: list[float] = field(default_factory=list)
    enqueue_ms: list[float] = field(default_factory=list)
    workers_warm: list[ProcStats] = field(default_factory=list)
    workers_after: list[ProcStats] = field(default_factory=list)
    log: Path | None = None
    cpu: CpuSnapshot = field(default_factory=lambda: CpuSnapshot(0.0, 0.0, 0.0, {}, 0.0))
    db: DbCounters = field(default_factory=lambda: DbCounters(0, 0))
    states: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    connections: int = 0
    host_ms: float = 0.0  # bench/host_speed.py's loop, just before the drain
    flushes: disk_flush.Flushes = field(default_factory=disk_flush.Flushes)  # during the drain

    @property
    def mails_per_second(self) -> float:
        return self.drive.accepted / self.drive.seconds if self.drive.seconds else 0.0


def run_phase(engine: Engine, config: BenchConfig, phase: Phase, index: int) -> PhaseResult:
    """Seed and measure an idle claim, then time the drain through real workers."""
    settings = scheduler_settings(config)
    result = PhaseResult(phase)
    reset(engine, config.redis_url)
    result.seed_seconds = seed(engine, phase)
    result.empty_claim_ms = empty_claim_ms(engine, settings)
    seed_due(engine, phase.mails, datetime.now(UTC), config.step)
    analyze(engine)
    result.log = config.log_dir / f"workers-{index}.log"
    measure_drain(engine, config, settings, result, result.log)
    result.lag = sent_lag(engine)
    result.states = state_counts(engine)
    return result


def seed(engine: Engine, phase: Phase) -> float:
    """Insert the phase's future rows; returns the seconds it took (part of the report)."""
    started = time.perf_counter()
    if phase.pending:
        seed_pending(engine, phase.pending, datetime.now(UTC))
        analyze(engine)
    return time.perf_counter() - started


def measure_drain(
    engine: Engine, config: BenchConfig, settings: Settings, result: PhaseResult, log: Path
) -> None:
    """Start the fake and the workers, warm up, then tick until every due mail is accepted."""
    broker = make_broker(settings)
    timed = TimedDispatcher(BrokerDispatcher(broker, QUEUE, settings.dispatch_message_size))
    fake = FakeSendGridProcess(
        API_KEY, validating=config.validating_fake, latency=config.provider_latency
    )
    try:
        started = time.perf_counter()
        with running_workers(config, fake.url, log) as main_pid:
            if config.warm_mails:
                warm_with_mails(engine, config, settings, broker, fake)
            else:
                warm_up(timed.inner, config.redis_url, config.processes * config.threads * 4)
            wait_quiet(main_pid)  # the group's fork process too has finished starting
            result.startup_seconds = time.perf_counter() - started
            result.workers_warm = worker_stats(main_pid)
            result.host_ms = host_speed.loop_ms()
            postmaster = postmaster_pid(engine)
            database = engine.url.database
            cpu_before = cpu_snapshot(result.workers_warm, fake.pid, postmaster, database)
            restamp_due(engine, datetime.now(UTC), config.step)
            db_before = db_counters(engine)
            warm = fake.stats().accepted
            with disk_flush.probing(config.flush_dir) as result.flushes:
                result.drive = drive(engine, timed, fake, settings, result.phase.mails, warm)
            result.workers_after = worker_stats(main_pid)
            after = cpu_snapshot(result.workers_after, fake.pid, postmaster, database)
            result.cpu = after.minus(cpu_before)
        time.sleep(1)  # backends report their statistics at most once a second
        result.db = db_counters(engine).minus(db_before)
        stats = fake.stats()
        result.invalid, result.connections = stats.invalid, stats.connections
    finally:
        fake.stop()
        broker.close()
    result.batch_claim_ms, result.enqueue_ms = timed.claim_ms, timed.enqueue_ms


def postmaster_pid(engine: Engine) -> int | None:
    """The PostgreSQL server of the bench database, when it runs on this machine: only its
    processes are counted, not those of another server other people's tests use."""
    with engine.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return parent_pid(int(backend))


# -- output ----------------------------------------------------------------------------------


def ms_summary(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} ms, max {max(values):.2f} ms (n={len(values)})"


def mib(value: int) -> str:
    return f"{value / MIB:.1f}"


def print_phase(result: PhaseResult, config: BenchConfig) -> None:
    phase = result.phase
    print(
        f"\n== {phase.mails} mails due now, {phase.pending:,} future steps pending, "
        f"{config.processes} processes x {config.threads} threads"
    )
    if phase.pending:
        print(f"seed {phase.pending:,} pending rows: {result.seed_seconds:.1f} s")
    print(f"workers started and warm in {result.startup_seconds:.1f} s")
    print(
        f"throughput: {result.drive.accepted} mails in {result.drive.seconds:.2f} s "
        f"= {result.mails_per_second:.0f} mails/s"
    )
    lag = result.lag
    print(
        f"lag sent_at - due_at over {lag.count} sent: p50 {lag.p50:.2f} s, "
        f"p95 {lag.p95:.2f} s, max {lag.max:.2f} s"
    )
    print(f"claim, empty tick:    {ms_summary(result.empty_claim_ms)}")
    print(f"claim, per batch:     {ms_summary(result.batch_claim_ms)}")
    print(f"enqueue, per batch:   {ms_summary(result.enqueue_ms)}")
    print(f"rows by state: {result.states}")
    accepted = max(result.drive.accepted, 1)
    print(
        f"PostgreSQL per mail: {result.db.transactions / accepted:.1f} transactions, "
        f"{result.db.sessions / accepted:.2f} new connections"
    )
    print(f"fake SendGrid: {result.invalid} invalid requests, {result.connections} connections")
    print_cpu(result)
    if result.log is not None:
        print(f"worker log: {log_levels(result.log)} ({result.log})")
    warm = {w.pid: w for w in result.workers_warm}
    for after in result.workers_after:
        before = warm.get(after.pid)
        print(
            f"worker pid {after.pid}: RSS {mib(before.rss) if before else '?'} MiB warm -> "
            f"{mib(after.rss)} MiB after, peak {mib(after.peak)} MiB"
        )


def log_levels(log: Path) -> str:
    """How many ERROR and WARNING lines the workers logged: a fast run full of errors
    measures nothing."""
    text = log.read_text(errors="replace")
    return ", ".join(f"{text.count(f'] [{level}] ')} {level}" for level in ("ERROR", "WARNING"))


def print_cpu(result: PhaseResult) -> None:
    """Where the two cores went during the drain, in CPU ms per accepted mail."""
    accepted = max(result.drive.accepted, 1)
    parts = result.cpu.parts()
    shares = ", ".join(f"{name} {1000 * sec / accepted:.2f}" for name, sec in parts.items())
    print(f"CPU ms per mail: {shares}")
    capacity = max((os.cpu_count() or 1) * result.drive.seconds, 1e-9)
    ours = sum(parts.values())
    other = max(result.cpu.machine - ours, 0.0)
    print(
        f"machine CPU during the drain: {100 * result.cpu.machine / capacity:.0f}% busy; "
        f"the parts above {100 * ours / capacity:.0f}%, everything else "
        f"{100 * other / capacity:.0f}% (other processes on the machine), "
        f"of it stolen by the hypervisor {100 * result.cpu.steal / capacity:.1f}%"
    )
    print(host_speed.describe(result.host_ms))
    print(result.flushes.describe())


def print_summary(results: Sequence[PhaseResult]) -> None:
    print("\n== summary")
    print(
        f"{'mails':>6} {'pending':>10} {'mails/s':>8} {'lag p50/p95/max s':>19} "
        f"{'claim empty ms':>15} {'claim/batch ms':>15} {'host ms':>8}  worker RSS MiB (peak)"
    )
    for r in results:
        lag = f"{r.lag.p50:.1f}/{r.lag.p95:.1f}/{r.lag.max:.1f}"
        empty = statistics.median(r.empty_claim_ms) if r.empty_claim_ms else 0.0
        batch = statistics.median(r.batch_claim_ms) if r.batch_claim_ms else 0.0
        rss = ", ".join(f"{mib(m.rss)} ({mib(m.peak)})" for m in r.workers_after)
        print(
            f"{r.phase.mails:>6} {r.phase.pending:>10,} {r.mails_per_second:>8.0f} "
            f"{lag:>19} {empty:>15.2f} {batch:>15.2f} {r.host_ms:>8.2f}  {rss}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    check_journey(ROOT / "journeys")
    engine = prepare_database(config.database_url)
    print(
        f"database {make_url(config.database_url).database}, redis {config.redis_url}, "
        f"worker logs in {config.log_dir}"
    )
    fake = "tests' validating FakeSendGrid" if config.validating_fake else "fast_sendgrid (202)"
    if config.provider_latency:
        fake += f", answering after {1000 * config.provider_latency:g} ms"
    load = os.getloadavg()[0]
    print(f"SendGrid stand-in: {fake}; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"due step: onboarding/{config.step}; frequency cap: {config.frequency_cap or 'none'}")
    results = []
    try:
        for index, phase in enumerate(phases(config)):
            result = run_phase(engine, config, phase, index)
            print_phase(result, config)
            results.append(result)
    finally:
        engine.dispose()
    print_summary(results)


if __name__ == "__main__":
    main()
