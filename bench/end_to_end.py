"""End-to-end benchmark on PostgreSQL + Redis: how many onboarding mails a second go out, how
late, and whether worker memory or the scheduler's claim cost grows with pending steps.

Each phase starts from empty tables, bulk-inserts due rows (and, for the memory phases,
future rows), starts real ``dramatiq workers`` processes against a local SendGrid fake, runs
the real scheduler ``tick`` in this process, and stops the clock when the fake has accepted
every mail. It prints numbers only; nothing here asserts on time.

    .venv/bin/python bench/end_to_end.py --quick
    .venv/bin/python bench/end_to_end.py --workers 2 --threads 16

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
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import orchestrator.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.journeys.loader import load_journeys
from orchestrator.queueing import BrokerDispatcher, make_broker
from orchestrator.scheduler import Dispatcher, claim_due_sends, tick
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from tests.fakes.sendgrid_server import FakeSendGrid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
QUEUE = "bench"
API_KEY = "SG.bench"
JOURNEY = "onboarding"
DUE_STEP = "welcome"
FUTURE_STEPS = ("basics", "faq", "case_studies", "feedback")
WARM_UP_SEND_ID = 0  # no such row: the worker builds its runtime, claims nothing, returns
EMPTY_CLAIM_REPEATS = 20
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_COMMANDS = {"postgres": "postgres", "redis-server": "redis"}


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
    log_dir: Path


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
    parser.add_argument("--pending-mails", type=int, help="mails due now in memory phases (1000)")
    parser.add_argument("--workers", type=int, default=2, help="dramatiq --processes")
    parser.add_argument("--threads", type=int, default=16, help="dramatiq --threads")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return BenchConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        mails=_chosen(args.mails, 500 if quick else 5_000),
        pending=tuple(args.pending if args.pending is not None else _default_pending(quick)),
        pending_mails=_chosen(args.pending_mails, 500 if quick else 1_000),
        processes=args.workers,
        threads=args.threads,
        log_dir=Path(tempfile.mkdtemp(prefix="stepmail-bench-")),
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
    return {
        "STEPMAIL_DATABASE_URL": config.database_url,
        "STEPMAIL_REDIS_URL": config.redis_url,
        "STEPMAIL_MAIL_TRANSPORT": "sendgrid",
        "STEPMAIL_SENDGRID_API_KEY": API_KEY,
        "STEPMAIL_SENDGRID_API_HOST": api_host,
        "STEPMAIL_QUEUE_NAME": QUEUE,
        "STEPMAIL_JOURNEYS_DIR": str(ROOT / "journeys"),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
    }


# -- database and Redis ----------------------------------------------------------------------


def prepare_database(url: str) -> Engine:
    """Migrate the bench database; refuse any other, since every phase truncates it."""
    name = make_url(url).database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to truncate database {name!r}: its name must contain 'bench'")
    upgrade(url)
    return make_engine(url)


def check_journey(journeys_dir: Path) -> None:
    """Fail early if the step ids seeded below no longer exist, rather than measure skips."""
    journey = load_journeys(journeys_dir).get(JOURNEY)
    if journey is None:
        raise SystemExit(f"journey {JOURNEY!r} not found in {journeys_dir}")
    for step_id in (DUE_STEP, *FUTURE_STEPS):
        journey.step(step_id)


def reset(engine: Engine, redis_url: str) -> None:
    """Empty tables and the bench's Redis database so phases never see each other's rows."""
    tables = ", ".join(t.name for t in reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


INSERT_CUSTOMERS = text("""
    INSERT INTO customer (external_id, public_id, email, name, company, plan,
        annual_contract_value, currency, locale, timezone, tier, tier_explicit,
        csm_name, csm_email, attributes, signed_up_at, created_at, updated_at)
    SELECT :prefix || g, 'pub-' || :prefix || g, :prefix || g || '@customer.example',
        'Customer ' || g, 'Company ' || g, 'business',
        (ARRAY[2000000, 360000, 30000])[1 + g % 3], 'JPY',
        (ARRAY['ja', 'en'])[1 + (g / 3) % 2], 'Asia/Tokyo',
        (ARRAY['high', 'low', 'tech'])[1 + g % 3], false,
        CASE WHEN g % 3 = 0 THEN 'Sato Hanako' END,
        CASE WHEN g % 3 = 0 THEN 'sato@relay.example' END,
        CAST('{}' AS json), :now, :now, :now
    FROM generate_series(1, :count) AS g
""")

INSERT_ENROLLMENTS = text("""
    INSERT INTO enrollment (customer_id, journey_id, entry_key, state, anchor_at, created_at)
    SELECT id, :journey, 'signup', 'active', :now, :now
    FROM customer WHERE external_id LIKE :prefix || '%'
""")

INSERT_DUE_SENDS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id,
        due_at, wake_at, state, attempts, dispatches, updated_at)
    SELECT e.id, e.customer_id, e.journey_id, :step, :now, :now, 'pending', 0, 0, :now
    FROM enrollment e JOIN customer c ON c.id = e.customer_id
    WHERE c.external_id LIKE :prefix || '%'
""")

INSERT_FUTURE_SENDS = text("""
    INSERT INTO scheduled_send (enrollment_id, customer_id, journey_id, step_id,
        due_at, wake_at, state, attempts, dispatches, updated_at)
    SELECT enrollment_id, customer_id, journey_id, step_id, due, due, 'pending', 0, 0, :now
    FROM (
        SELECT e.id AS enrollment_id, e.customer_id, e.journey_id, s.step_id,
            CAST(:now AS timestamptz) + (1 + random() * 29) * interval '1 day' AS due
        FROM enrollment e JOIN customer c ON c.id = e.customer_id
        CROSS JOIN unnest(CAST(:steps AS text[])) AS s(step_id)
        WHERE c.external_id LIKE :prefix || '%'
        LIMIT :count
    ) AS future
""")


def seed_customers(engine: Engine, prefix: str, count: int, now: datetime) -> None:
    """Customers of all three tiers and both locales, each enrolled in onboarding."""
    with engine.begin() as connection:
        connection.execute(INSERT_CUSTOMERS, {"prefix": prefix, "count": count, "now": now})
        connection.execute(INSERT_ENROLLMENTS, {"prefix": prefix, "journey": JOURNEY, "now": now})


def seed_due(engine: Engine, count: int, now: datetime) -> None:
    """``count`` customers whose welcome mail is due now: the rows the phase delivers."""
    seed_customers(engine, "due-", count, now)
    with engine.begin() as connection:
        connection.execute(INSERT_DUE_SENDS, {"prefix": "due-", "step": DUE_STEP, "now": now})


def seed_pending(engine: Engine, count: int, now: datetime) -> None:
    """``count`` later steps due in 1 to 30 days, four per customer, all server-side SQL
    (``INSERT … SELECT generate_series``) because a million rows must load in seconds."""
    customers = -(-count // len(FUTURE_STEPS))
    seed_customers(engine, "future-", customers, now)
    params = {"prefix": "future-", "steps": list(FUTURE_STEPS), "count": count, "now": now}
    with engine.begin() as connection:
        connection.execute(INSERT_FUTURE_SENDS, params)


def analyze(engine: Engine) -> None:
    """Fresh planner statistics, as autovacuum would give a long-lived table."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def restamp_due(engine: Engine, now: datetime) -> None:
    """Make the due rows due *now*, so lag counts from the first tick, not from seeding or
    worker start-up."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE scheduled_send SET due_at = :now, wake_at = :now, updated_at = :now"
                " WHERE state = 'pending' AND step_id = :step"
            ),
            {"now": now, "step": DUE_STEP},
        )


@dataclass(frozen=True)
class Lag:
    """Seconds from ``due_at`` to ``sent_at`` over the sent rows."""

    count: int
    p50: float
    p95: float
    max: float


def sent_lag(engine: Engine) -> Lag:
    query = text("""
        SELECT count(*),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - due_at)),
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - due_at)),
            max(extract(epoch FROM sent_at - due_at))
        FROM scheduled_send WHERE state = 'sent'
    """)
    with engine.connect() as connection:
        count, p50, p95, worst = connection.execute(query).one()
    return Lag(int(count), float(p50 or 0), float(p95 or 0), float(worst or 0))


def state_counts(engine: Engine) -> dict[str, int]:
    """Every row's state: shows failures or rows still pending instead of hiding them."""
    query = text("SELECT state, count(*) FROM scheduled_send GROUP BY state ORDER BY state")
    with engine.connect() as connection:
        return {state: int(count) for state, count in connection.execute(query)}


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
    fake: FakeSendGrid,
    settings: Settings,
    mails: int,
    timeout: float,
) -> DriveResult:
    """Tick every ``dispatch_interval`` like ``stepmail scheduler`` until the fake has taken
    ``mails`` mails (or ``timeout``); returns the wall time from the first tick."""
    lease = timedelta(seconds=settings.send_lease)
    started = time.perf_counter()
    next_tick = started
    while len(fake.accepted) < mails and time.perf_counter() - started < timeout:
        if time.perf_counter() >= next_tick:
            dispatcher.start_tick()
            tick(engine, dispatcher, datetime.now(UTC), settings.dispatch_batch_size, lease)
            next_tick = time.perf_counter() + settings.dispatch_interval
        time.sleep(0.002)
    return DriveResult(time.perf_counter() - started, len(fake.accepted))


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
    """SIGTERM lets Dramatiq finish in-flight messages; SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
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


def _proc_stat(pid: int | str) -> tuple[str, list[str]]:
    """The command name and the fields after it in /proc/<pid>/stat (the name may hold
    spaces or parentheses, hence the split on the last ``)``)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    head, _, rest = raw.rpartition(")")
    return head.partition("(")[2], rest.split()


def _all_stats() -> Iterator[tuple[int, str, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, fields = _proc_stat(entry.name)
            except OSError:
                continue  # exited while we looked
            yield int(entry.name), name, fields


def _cpu_seconds(fields: list[str]) -> float:
    """utime + stime, fields 14 and 15 of /proc/<pid>/stat."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    """Direct children of ``parent`` from /proc (psutil is not a dependency)."""
    return sorted(pid for pid, _, fields in _all_stats() if int(fields[1]) == parent)


@dataclass(frozen=True)
class ProcStats:
    """Resident memory of one process now and at its peak (bytes), and CPU seconds so far."""

    pid: int
    rss: int
    peak: int
    cpu: float


def stats_of(pid: int) -> ProcStats:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    cpu = _cpu_seconds(_proc_stat(pid)[1])
    return ProcStats(pid, values.get("VmRSS", 0), values.get("VmHWM", 0), cpu)


def worker_stats(main_pid: int) -> list[ProcStats]:
    return [stats_of(pid) for pid in child_pids(main_pid)]


def server_cpu() -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL and Redis processes: with the workers' and our
    own, it shows which component a 2-core machine spends its time in."""
    totals = dict.fromkeys(SERVER_COMMANDS.values(), 0.0)
    for _, name, fields in _all_stats():
        if name in SERVER_COMMANDS:
            totals[SERVER_COMMANDS[name]] += _cpu_seconds(fields)
    return totals


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of every component at one instant; two of them bracket the drain."""

    workers: float
    bench: float
    servers: dict[str, float]

    def minus(self, earlier: CpuSnapshot) -> CpuSnapshot:
        servers = {k: v - earlier.servers.get(k, 0.0) for k, v in self.servers.items()}
        return CpuSnapshot(self.workers - earlier.workers, self.bench - earlier.bench, servers)


def cpu_snapshot(workers: Sequence[ProcStats]) -> CpuSnapshot:
    return CpuSnapshot(sum(w.cpu for w in workers), time.process_time(), server_cpu())


# -- the fake provider -----------------------------------------------------------------------


def start_fake_sendgrid() -> FakeSendGrid:
    """The tests' SendGrid fake: it validates every body against the OpenAPI description
    (~0.2 ms a request), so a mail SendGrid would refuse cannot count as delivered."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `tests` is not an installed package
    from tests.fakes.sendgrid_server import FakeSendGrid

    return FakeSendGrid(API_KEY).start()


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
    cpu: CpuSnapshot = field(default_factory=lambda: CpuSnapshot(0.0, 0.0, {}))
    states: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    connections: int = 0

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
    seed_due(engine, phase.mails, datetime.now(UTC))
    analyze(engine)
    measure_drain(engine, config, settings, result, config.log_dir / f"workers-{index}.log")
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
    timed = TimedDispatcher(BrokerDispatcher(broker, QUEUE))
    fake = start_fake_sendgrid()
    try:
        started = time.perf_counter()
        with running_workers(config, fake.url, log) as main_pid:
            warm_up(timed.inner, config.redis_url, config.processes * config.threads * 4)
            result.startup_seconds = time.perf_counter() - started
            result.workers_warm = worker_stats(main_pid)
            cpu_before = cpu_snapshot(result.workers_warm)
            restamp_due(engine, datetime.now(UTC))
            timeout = 120 + result.phase.mails / 50
            result.drive = drive(engine, timed, fake, settings, result.phase.mails, timeout)
            result.workers_after = worker_stats(main_pid)
            result.cpu = cpu_snapshot(result.workers_after).minus(cpu_before)
        result.invalid, result.connections = len(fake.invalid), fake.connections
    finally:
        fake.stop()
        broker.close()
    result.batch_claim_ms, result.enqueue_ms = timed.claim_ms, timed.enqueue_ms


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
    print(f"fake SendGrid: {result.invalid} invalid requests, {result.connections} connections")
    print_cpu(result)
    warm = {w.pid: w for w in result.workers_warm}
    for after in result.workers_after:
        before = warm.get(after.pid)
        print(
            f"worker pid {after.pid}: RSS {mib(before.rss) if before else '?'} MiB warm -> "
            f"{mib(after.rss)} MiB after, peak {mib(after.peak)} MiB"
        )


def print_cpu(result: PhaseResult) -> None:
    """Where the two cores went during the drain, in CPU ms per accepted mail."""
    accepted = max(result.drive.accepted, 1)
    parts = {"workers": result.cpu.workers, "bench (scheduler + fake SendGrid)": result.cpu.bench}
    parts.update(result.cpu.servers)
    shares = ", ".join(f"{name} {1000 * sec / accepted:.2f}" for name, sec in parts.items())
    capacity = (os.cpu_count() or 1) * result.drive.seconds
    used = sum(parts.values())
    print(f"CPU ms per mail: {shares} (machine busy {100 * used / max(capacity, 1e-9):.0f}%)")


def print_summary(results: Sequence[PhaseResult]) -> None:
    print("\n== summary")
    print(
        f"{'mails':>6} {'pending':>10} {'mails/s':>8} {'lag p50/p95/max s':>19} "
        f"{'claim empty ms':>15} {'claim/batch ms':>15}  worker RSS MiB (peak)"
    )
    for r in results:
        lag = f"{r.lag.p50:.1f}/{r.lag.p95:.1f}/{r.lag.max:.1f}"
        empty = statistics.median(r.empty_claim_ms) if r.empty_claim_ms else 0.0
        batch = statistics.median(r.batch_claim_ms) if r.batch_claim_ms else 0.0
        rss = ", ".join(f"{mib(m.rss)} ({mib(m.peak)})" for m in r.workers_after)
        print(
            f"{r.phase.mails:>6} {r.phase.pending:>10,} {r.mails_per_second:>8.0f} "
            f"{lag:>19} {empty:>15.2f} {batch:>15.2f}  {rss}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    check_journey(ROOT / "journeys")
    engine = prepare_database(config.database_url)
    print(
        f"database {make_url(config.database_url).database}, redis {config.redis_url}, "
        f"worker logs in {config.log_dir}"
    )
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
