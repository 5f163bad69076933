"""API load bench: signed signups, single events and batches of 1,000 events against a real
``stepmail api --workers N`` on PostgreSQL, from ``C`` concurrent loopback clients.

For each API process count and each kind of request it prints requests/s, latency
p50/p95/p99, the status codes, and what is robust to a busy machine: the API processes' own
CPU milliseconds per request (from /proc), PostgreSQL transactions per request (from
``pg_stat_database``) and the load client's CPU per request (on 2 cores the client competes
with the server it measures). Wall-clock numbers are only worth what the machine's load was;
the first line prints it, and which client ran. Each run also prints how fast the host ran
Python just before it (``host_speed.py``) and how long the disk took to flush a small write
during it (``disk_flush.py``): every ``202`` waits for a flush, so a stall of the disk is
every waiting request's latency (``--flush-probe-dir``: a directory on the database's disk).

    su postgres -c "createdb -O stepmail stepmail_bench_api"      # once
    apt-get install -y wrk                                         # the C client (optional)
    .venv/bin/python bench/api_load.py                             # 1 and 2 API processes
    .venv/bin/python bench/api_load.py --api-processes 1 --concurrency 32 --requests 2000
    .venv/bin/python bench/api_load.py --kinds event --seconds 20 --client httpx

Two clients send the same requests (``--client``; wrk when it is on PATH, else httpx):
``wrk`` (``wrk_client.py``: C on epoll, ~0.05 ms of CPU a request; the requests are httpx's
own bytes, built beforehand, each sent once) and ``httpx`` (asyncio in this process, 4-5 ms
of CPU a request on this machine: more than the API's, so on 2 shared cores it, not the
server, bounds req/s). With wrk the latencies are its raw histogram (its coordinated-omission
correction undone), and requests sent but not answered (a reset, or still out at
``--seconds``, which wrk does not wait for) count as "no answer" beside wrk's socket errors.

Before each kind's measured requests, ``--warm-up`` requests of it (default 320; batches one
for each 100) go unmeasured: the numbers are a serving API's, not a just-started one's first
groups (``--warm-up 0`` measures those too).

Bounded: every run sends at most ``--requests`` requests (or stops after ``--seconds``) per
kind, plus its warm-up, only to 127.0.0.1, and the database name must contain ``bench`` (it
is rebuilt).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import disk_flush
import host_speed
import httpx
import wrk_client
from bench_db import db_counters, prepare_database, seed_customers
from proc_stats import child_pids, machine_busy_seconds, main_thread_cpu, stats_of
from proc_stats import server_cpu as postgres_server_cpu
from sqlalchemy import Engine, exists, select, table, text
from sqlalchemy.engine import make_url

from orchestrator.enrollment.signature import sign

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_api"
HOOK_SECRET = "bench-hook-secret-0123456789abcdef"  # noqa: S105  (a throwaway bench server)
API_KEY = "bench-api-key-0123456789abcdef"
CUSTOMERS = 10_000  # the customers events are sent for, each enrolled in onboarding
BATCH = 1_000
KINDS = ("signup", "event", "batch")
CLIENTS = ("wrk", "httpx")
EVENT_NAMES = ("login", "report_created", "login", "workflow_created", "login")


@dataclass(frozen=True)
class LoadConfig:
    database_url: str
    api_processes: tuple[int, ...]
    concurrency: int
    requests: int
    batch_requests: int
    seconds: float
    kinds: tuple[str, ...]
    client: str
    warm_up: int  # unmeasured requests of a kind before its measured ones (batches: see below)
    flush_dir: str | None  # where disk_flush.py's probe writes during each run (None: $TMPDIR)


def parse_args(argv: Sequence[str] | None = None) -> LoadConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--api-processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="per kind (signup, event)")
    parser.add_argument("--batch-requests", type=int, default=20, help="batches of 1,000")
    parser.add_argument("--seconds", type=float, default=60, help="cap per kind")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--warm-up",
        type=int,
        default=10 * 32,
        help="requests of each kind sent, and not measured, before it (batches: one for each"
        " 100 of them); 0 measures a cold process",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="wrk" if shutil.which("wrk") else "httpx",
        help="wrk if it is installed (apt-get install -y wrk), else httpx",
    )
    parser.add_argument(
        "--flush-probe-dir",
        default=None,
        help="a directory on the database's disk, for disk_flush.py's probe (default: $TMPDIR)",
    )
    args = parser.parse_args(argv)
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: no wrk on PATH (apt-get install -y wrk)")
    return LoadConfig(
        args.database_url,
        tuple(args.api_processes),
        args.concurrency,
        args.requests,
        args.batch_requests,
        args.seconds,
        tuple(args.kinds),
        args.client,
        args.warm_up,
        args.flush_probe_dir,
    )


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_env(database_url: str, port: int, outbox: Path) -> dict[str, str]:
    """What an operator would export; development mode only for the example sender domain.
    No ``STEPMAIL_*`` variable of this shell reaches the API but ``STEPMAIL_DB_POOL_SIZE``
    (earlier notes ran with it set, and it was dropped here until session 11)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")}
    if "STEPMAIL_DB_POOL_SIZE" in os.environ:  # the one setting a run may choose
        keep["STEPMAIL_DB_POOL_SIZE"] = os.environ["STEPMAIL_DB_POOL_SIZE"]
    return {
        **keep,
        "STEPMAIL_ENVIRONMENT": "development",
        "STEPMAIL_DATABASE_URL": database_url,
        "STEPMAIL_SIGNUP_HOOK_SECRET": HOOK_SECRET,
        "STEPMAIL_API_KEY": API_KEY,
        "STEPMAIL_HOST": "127.0.0.1",
        "STEPMAIL_PORT": str(port),
        "STEPMAIL_JOURNEYS_DIR": str(ROOT / "journeys"),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
        "STEPMAIL_OUTBOX_DIR": str(outbox),
        # wrk_requests.lua takes a connection the server closes while it waits for its
        # thread's last answers for one asking again, and stops the thread early: with
        # batches answered in over 5 s (the default), their last requests showed as "no
        # answer" and a read error though the API answered them all
        "STEPMAIL_HTTP_KEEP_ALIVE_TIMEOUT": "300",
    }


@contextmanager
def running_api(database_url: str, processes: int, log: Path) -> Iterator[tuple[str, int]]:
    """``stepmail api --workers N`` in its own session; yields its base URL and pid."""
    port = free_port()
    outbox = Path(tempfile.mkdtemp(prefix="stepmail-api-load-outbox-"))
    command = [str(Path(sys.executable).parent / "stepmail"), "api"]
    if processes > 1:  # (a release before --workers runs as one process)
        command += ["--workers", str(processes)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=api_env(database_url, port, outbox),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"stepmail api did not start; see {log}")
            time.sleep(0.2)
        time.sleep(1 if processes > 1 else 0)  # let every worker finish starting
        yield base, process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def server_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the API parent and every process below it (uvicorn's workers): in all,
    and in their event-loop threads (each process's first thread)."""
    total, loops, stack = 0.0, 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            total += stats_of(current).cpu
            loops += main_thread_cpu(current)
        except OSError:
            continue
        stack.extend(child_pids(current))
    return total, loops


# -- requests --------------------------------------------------------------------------------


Request = tuple[str, bytes, dict[str, str]]


def signup_request(n: int, run: str) -> Request:
    external_id = f"load-{run}-{n}"
    body = json.dumps(
        {
            "external_id": external_id,
            "email": f"{external_id}@customer.example",
            "name": "山田 太郎" if n % 2 else "Jane Doe",
            "company": "株式会社サンプル",
            "annual_contract_value": (3_600_000, 360_000, 36_000)[n % 3],
            "locale": ("ja", "en")[n % 2],
            "csm_name": "佐藤 花子",
            "csm_email": "hanako@relay.example",
        },
        ensure_ascii=False,
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Stepmail-Timestamp": timestamp,
        "X-Stepmail-Signature": sign(HOOK_SECRET, timestamp, body),
    }
    return "/hooks/signup", body, headers


EVENT_HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


def event_request(n: int, run: str) -> Request:
    event = {
        "external_id": f"ev-{1 + n % CUSTOMERS}",
        "name": EVENT_NAMES[n % len(EVENT_NAMES)],
        "id": f"{run}-{n}",
    }
    return "/v1/events", json.dumps(event).encode(), EVENT_HEADERS


def batch_request(n: int, run: str) -> Request:
    events = [
        {
            "external_id": f"ev-{1 + (n * BATCH + k) % CUSTOMERS}",
            "name": EVENT_NAMES[k % len(EVENT_NAMES)],
            "id": f"{run}-b{n}-{k}",
        }
        for k in range(BATCH)
    ]
    return "/v1/events", json.dumps({"events": events}).encode(), EVENT_HEADERS


MAKERS: dict[str, Callable[[int, str], Request]] = {
    "signup": signup_request,
    "event": event_request,
    "batch": batch_request,
}


def run_id(tag: str = "") -> str:
    """Part of every external id and event id, so no two runs' requests are alike (``tag``
    keeps a warm-up's apart from the run it precedes)."""
    return f"{int(time.time())}-{os.getpid()}{tag}"


@dataclass
class Result:
    kind: str
    processes: int
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    server_cpu: float = 0.0
    loop_cpu: float = 0.0
    client_cpu: float = 0.0
    transactions: int = 0
    postgres_cpu: float = 0.0
    host_ms: float = 0.0  # bench/host_speed.py's loop, just before the kind's run
    machine_busy: float = 0.0  # CPU seconds every core spent not idle during the run
    flushes: disk_flush.Flushes = field(default_factory=disk_flush.Flushes)  # during the run

    @property
    def count(self) -> int:
        return len(self.latencies)


async def drive(
    base: str, kind: str, total: int, concurrency: int, cap: float, result: Result, tag: str
) -> None:
    """``concurrency`` clients, each sending its next request as soon as the last answered,
    until ``total`` were sent or ``cap`` seconds passed."""
    make, run = MAKERS[kind], run_id(tag)
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.perf_counter() + cap
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                n = next(counter)
                if n >= total:
                    return
                path, body, headers = make(n, run)
                started = time.perf_counter()
                try:
                    response = await client.post(path, content=body, headers=headers)
                    status: int | str = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started


def send_with_httpx(
    base: str, kind: str, total: int, config: LoadConfig, result: Result, tag: str = ""
) -> None:
    started = time.process_time()
    asyncio.run(drive(base, kind, total, config.concurrency, config.seconds, result, tag))
    result.client_cpu = time.process_time() - started


def build_requests(base: str, kind: str, total: int, tag: str = "") -> list[bytes]:
    """Every request a wrk run may send, the bytes httpx would write for it. Built before
    the run: the httpx client builds each as it sends it, on its own CPU."""
    make, run = MAKERS[kind], run_id(tag)
    with httpx.Client(base_url=base) as client:
        built = (make(n, run) for n in range(total))
        return [
            wrk_client.raw_request(client.build_request("POST", path, content=body, headers=h))
            for path, body, h in built
        ]


def send_with_wrk(base: str, requests: list[bytes], config: LoadConfig, result: Result) -> None:
    if not requests:
        return
    connections = min(config.concurrency, len(requests))  # as many as httpx has busy at once
    run = wrk_client.run(base, requests, connections, config.seconds)
    result.seconds, result.latencies, result.client_cpu = run.seconds, run.latencies, run.cpu
    result.statuses.update(run.statuses)


def warm_up(base: str, kind: str, config: LoadConfig, processes: int) -> None:
    """Requests of ``kind`` the run does not measure, from the same client: a process's first
    groups do one-time work (SQLAlchemy compiles each statement on its first run, ~20 ms of
    CPU with the group's requests waiting on it), which a serving API did long before any
    given minute (bench/README, "Session 23"). Each must be accepted."""
    total = warm_up_requests(kind, config.warm_up)
    if total <= 0:
        return
    result = Result(kind, processes, config.concurrency)
    if config.client == "wrk":
        send_with_wrk(base, build_requests(base, kind, total, tag="w"), config, result)
    else:
        send_with_httpx(base, kind, total, config, result, tag="w")
    if set(result.statuses) != {202}:
        raise SystemExit(f"{kind} warm-up: statuses {dict(result.statuses)}, not all 202")


def warm_up_requests(kind: str, warm_up: int) -> int:
    """A batch does a hundred single events' work and more: one batch per 100 requests."""
    return -(-warm_up // 100) if kind == "batch" else warm_up


def measure(
    engine: Engine, base: str, pid: int, kind: str, config: LoadConfig, processes: int
) -> Result:
    warm_up(base, kind, config, processes)
    result = Result(kind, processes, config.concurrency)
    total = config.batch_requests if kind == "batch" else config.requests
    requests = build_requests(base, kind, total) if config.client == "wrk" else []
    database = engine.url.database
    result.host_ms = host_speed.loop_ms()
    before_db, before_cpu = db_counters(engine), server_cpu(pid)
    before_pg = _postgres_cpu(database)
    busy_before = machine_busy_seconds()
    with disk_flush.probing(config.flush_dir) as result.flushes:
        if config.client == "wrk":
            send_with_wrk(base, requests, config, result)
        else:
            send_with_httpx(base, kind, total, config, result)
    result.machine_busy = machine_busy_seconds() - busy_before
    after_cpu = server_cpu(pid)
    result.postgres_cpu = _postgres_cpu_since(before_pg, database)
    result.server_cpu = after_cpu[0] - before_cpu[0]
    result.loop_cpu = after_cpu[1] - before_cpu[1]
    time.sleep(1.1)  # backends report their counters at most once a second
    result.transactions = db_counters(engine).minus(before_db).transactions
    return result


def _postgres_cpu(database: str | None) -> dict[str, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench's database."""
    cpu = postgres_server_cpu(database=database)
    return {name: seconds for name, seconds in cpu.items() if name.startswith("postgres:")}


def _postgres_cpu_since(before: dict[str, float], database: str | None) -> float:
    """What those backends spent since ``before``: each one alive now, from where it stood
    then (a new one from zero). A backend that exited in between took its share along, so
    the figure is low, never negative, when the API's pool closes connections mid-run."""
    now = _postgres_cpu(database)
    return sum(seconds - before.get(name, 0.0) for name, seconds in now.items())


# -- set-up and output -----------------------------------------------------------------------


def seed(engine: Engine) -> None:
    """Customers ``ev-1`` … for the events, each enrolled in onboarding; nothing else.

    Only the tables that hold rows are analyzed, as autovacuum would: statistics taken of the
    empty ``usage_event`` told the planner it was tiny while it grew from nothing during the
    run (a freshly created or truncated table has none, and the planner assumes ten pages),
    and the first second of single events then read it with sequential scans (bench/README,
    "Session 9")."""
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
        names = [r[0] for r in rows if r[0] != "alembic_version"]
        connection.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    seed_customers(engine, "ev-", CUSTOMERS, datetime.now(UTC))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in names:
            if connection.execute(select(exists().select_from(table(name)))).scalar():
                connection.execute(text(f"ANALYZE {name}"))


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def print_result(r: Result) -> None:
    rate = r.count / r.seconds if r.seconds else 0.0
    ms = [1000 * v for v in r.latencies]
    per = max(r.count, 1)
    events = f" = {rate * BATCH:,.0f} events/s" if r.kind == "batch" else ""
    print(
        f"{r.kind:<7} {r.processes} proc x{r.concurrency:<3} {r.count:>6} req "
        f"{r.seconds:6.1f} s {rate:8.1f} req/s{events}  "
        f"p50 {percentile(ms, 0.5):6.1f}  p95 {percentile(ms, 0.95):6.1f}  "
        f"p99 {percentile(ms, 0.99):6.1f} ms  mean {statistics.fmean(ms) if ms else 0:6.1f}"
    )
    print(
        f"        statuses {dict(r.statuses)}; per request: API CPU "
        f"{1000 * r.server_cpu / per:.2f} ms (event loop {1000 * r.loop_cpu / per:.2f} ms), "
        f"PostgreSQL transactions {r.transactions / per:.2f} "
        f"(CPU {1000 * r.postgres_cpu / per:.2f} ms),"
        f" client CPU {1000 * r.client_cpu / per:.3f} ms"
    )
    capacity = (os.cpu_count() or 1) * r.seconds
    if capacity:  # idle cores under load: work waiting (locks, commits, one GIL), not CPU
        print(f"        machine CPU during the run: {100 * r.machine_busy / capacity:.0f}% busy")
    print(f"        {host_speed.describe(r.host_ms)}")
    print(f"        {r.flushes.describe()}")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    engine = prepare_database(config.database_url)
    log_dir = Path(tempfile.mkdtemp(prefix="stepmail-api-load-"))
    load = os.getloadavg()
    print(
        f"client {config.client}; warm-up {config.warm_up} requests a kind (batches"
        f" {warm_up_requests('batch', config.warm_up)}); database"
        f" {make_url(config.database_url).database}; API logs in {log_dir}; load average"
        f" {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs"
    )
    results = []
    try:
        for processes in config.api_processes:
            seed(engine)
            with running_api(config.database_url, processes, log_dir / f"api-{processes}.log") as (
                base,
                pid,
            ):
                for kind in config.kinds:
                    result = measure(engine, base, pid, kind, config, processes)
                    print_result(result)
                    results.append(result)
    finally:
        engine.dispose()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
