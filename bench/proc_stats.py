"""What /proc says about processes: children, resident memory and CPU time, so the bench
needs no psutil. Linux only, like the machine the target is set for."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    """utime + stime: fields 14 and 15 of /proc/<pid>/stat."""
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


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of a process's first thread (its id is the process's): in an API process
    the event loop, where uvicorn and the application run; the services run in other
    threads."""
    return _cpu_seconds(_proc_stat(f"{pid}/task/{pid}")[1])


def worker_stats(main_pid: int) -> list[ProcStats]:
    return [stats_of(pid) for pid in child_pids(main_pid)]


def _backend_database(pid: int) -> str | None:
    """The database a PostgreSQL backend serves, from its title (``postgres: [cluster:] user db
    host``);
    None for the postmaster and the server's own processes (checkpointer, WAL writer...)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeError):
        return None
    parts = title.split()
    if parts[:1] != ["postgres:"]:
        return None
    parts = parts[2:] if len(parts) > 1 and parts[1].endswith(":") else parts[1:]  # cluster
    return parts[1] if len(parts) > 2 else None


def server_cpu(postmaster: int | None = None, database: str | None = None) -> dict[str, float]:
    """CPU seconds so far of Redis and PostgreSQL, keyed per process so one that exits is
    dropped rather than subtracted. Backends that exit hand their CPU time to the
    postmaster (its cutime + cstime, fields 16 and 17), so connection churn is counted.

    With ``postmaster`` only that server's processes count (a private one for the bench,
    when others use the shared server); else every database's backends are included: on a
    shared machine, the test suite's too, which the "everything else" share makes visible.

    With ``database`` only the backends serving it count: on a server other people's tests use,
    every backend of theirs is a child of the same postmaster (and their short-lived
    connections hand their CPU to it), which made the bench's "PostgreSQL CPU per mail" several
    times its own. The server's shared processes (WAL writer, checkpointer) are then left out.
    """
    stats = {pid: (name, fields) for pid, name, fields in _all_stats()}
    postgres = {pid for pid, (name, _) in stats.items() if name == "postgres"}
    if postmaster is not None:
        postgres = {p for p in postgres if p == postmaster or int(stats[p][1][1]) == postmaster}
    totals = {"redis": 0.0}
    for pid, (name, fields) in stats.items():
        if name == "redis-server":
            totals["redis"] += _cpu_seconds(fields)
        elif pid in postgres and database is not None:
            if _backend_database(pid) == database:
                totals[f"postgres:{pid}"] = _cpu_seconds(fields)
        elif pid in postgres:
            totals[f"postgres:{pid}"] = _cpu_seconds(fields)
            if int(fields[1]) not in postgres:  # the postmaster
                reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
                totals[f"postgres:{pid}:reaped"] = reaped
    return totals


def machine_busy_seconds() -> float:
    """CPU seconds every core spent not idle, from /proc/stat: whatever else runs on the
    machine (a test suite, say) shows up as the gap to our own components."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def machine_steal_seconds() -> float:
    """CPU seconds the hypervisor ran other guests while this one wanted a core."""
    return int(Path("/proc/stat").read_text().split(maxsplit=9)[8]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of every component at one instant; two of them bracket the drain."""

    workers: float
    scheduler: float
    fake: float
    servers: dict[str, float]
    machine: float
    steal: float = 0.0

    def minus(self, earlier: CpuSnapshot) -> CpuSnapshot:
        """The CPU spent in between; a process new since ``earlier`` counts from zero."""
        servers = {k: v - earlier.servers.get(k, 0.0) for k, v in self.servers.items()}
        return CpuSnapshot(
            self.workers - earlier.workers,
            self.scheduler - earlier.scheduler,
            self.fake - earlier.fake,
            servers,
            self.machine - earlier.machine,
            self.steal - earlier.steal,
        )

    def parts(self) -> dict[str, float]:
        backends = sum(v for k, v in self.servers.items() if k.startswith("postgres:"))
        return {
            "workers": self.workers,
            "scheduler (this process)": self.scheduler,
            "fake SendGrid": self.fake,
            "postgres": backends,
            "redis": self.servers.get("redis", 0.0),
        }


def cpu_snapshot(
    workers: Sequence[ProcStats],
    fake_pid: int,
    postmaster: int | None = None,
    database: str | None = None,
) -> CpuSnapshot:
    return CpuSnapshot(
        workers=sum(w.cpu for w in workers),
        scheduler=time.process_time(),
        fake=stats_of(fake_pid).cpu,
        servers=server_cpu(postmaster, database),
        machine=machine_busy_seconds(),
        steal=machine_steal_seconds(),
    )


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, or None when it is not a process of this machine."""
    try:
        return int(_proc_stat(pid)[1][1])
    except OSError:
        return None


def group_cpu(main_pid: int) -> float:
    """CPU seconds so far of ``main_pid`` and its direct children (a Dramatiq worker group:
    its worker processes and its fork processes)."""
    total = 0.0
    for pid in [main_pid, *child_pids(main_pid)]:
        try:
            total += _cpu_seconds(_proc_stat(pid)[1])
        except OSError:
            continue  # exited while we looked
    return total


def wait_quiet(
    main_pid: int, *, window: float = 0.2, busy: float = 0.1, timeout: float = 60
) -> float:
    """Wait until the process group uses under ``busy`` of one core over ``window`` seconds;
    returns the seconds waited. A worker group is not started when its worker processes say
    they are ready: Dramatiq starts its fork processes (Stepmail's metrics server) after
    them, and the first one imported the whole service (~1.5 s of CPU) while a phase's clock
    ran, counted as the workers' and taken from their cores."""
    started = time.monotonic()
    before = group_cpu(main_pid)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = group_cpu(main_pid)
        if now - before < busy * window:
            break
        before = now
    return time.monotonic() - started


def backend_cpu_ms(before: dict[str, float], after: dict[str, float]) -> float:
    """PostgreSQL backends' CPU milliseconds between two :func:`server_cpu` readings, counting
    only the backends alive at both (one that exits hands its CPU to the postmaster)."""
    return 1000 * sum(
        after[key] - before[key]
        for key in after.keys() & before.keys()
        if key.startswith("postgres:")
    )
