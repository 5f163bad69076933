"""wrk as api_load.py's load client: a C client on epoll costs the 2 shared cores tens of
microseconds a request where httpx costs milliseconds, so the bench measures the server.

    apt-get install -y wrk       # Debian's wrk 4.1 (LuaJIT); a bench tool, not needed by CI

The requests are built in Python beforehand (httpx's own bytes, so the server parses the
same headers whichever client sends them) and written to a file; ``wrk_requests.lua`` hands
each wrk thread its share, sends every request once, stops a thread when its share is
answered, and prints the summary, the statuses and the raw latency histogram as JSON.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).with_name("wrk_requests.lua")
THREADS = 2  # one per core; wrk gives each thread connections // threads


@dataclass(frozen=True)
class WrkRun:
    seconds: float
    latencies: list[float]  # seconds, one per answered request
    statuses: Counter[int | str]
    cpu: float  # wrk's own CPU seconds (its rusage), start-up and the file read included


def raw_request(request: httpx.Request) -> bytes:
    """The bytes httpx writes for ``request`` (built by a client, so its default headers are
    in it): request line, headers, blank line, body."""
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1".encode()]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.content


def run(base: str, requests: Sequence[bytes], connections: int, cap: float) -> WrkRun:
    """Send ``requests`` from ``connections`` keep-alive connections, each request once, for
    at most ``cap`` seconds."""
    threads = math.gcd(connections, THREADS)  # 2 if the connections split evenly, else 1
    seconds = f"{math.ceil(cap)}s"  # --timeout: the longest latency wrk 4.1 records
    with tempfile.TemporaryDirectory(prefix="stepmail-wrk-") as folder:
        source, out = Path(folder, "requests"), Path(folder, "out")
        source.write_bytes(b"".join(b"%d\n%s" % (len(r), r) for r in requests))
        command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", seconds]
        command += ["--timeout", seconds, "-s", str(SCRIPT), base, "--", str(source)]
        command += [str(threads), str(connections // threads)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with out.open("wb") as stdout:
            process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
        complaints = wait_for_threads(process, threads)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode:
            raise SystemExit(f"wrk failed ({process.returncode}): {complaints}")
        report = json.loads(out.read_text().splitlines()[-1])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return read_report(report, connections, cpu)


def wait_for_threads(process: subprocess.Popen[bytes], threads: int) -> str:
    """Until every wrk thread wrote "done" (or wrk ended at ``-d``), then end wrk's sleep
    with SIGINT, sent once only its main thread is left (a signal goes to any thread that
    does not block it); returns what else wrk wrote to stderr."""
    assert process.stderr is not None
    done, other = 0, []
    for line in process.stderr:
        if line != b"done\n":
            other.append(line.decode(errors="replace"))
        elif (done := done + 1) == threads:
            break
    while process.poll() is None:
        alone = threads_left(process.pid) == 1
        if alone:
            os.kill(process.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1 if alone else 0.001)
    other.append(process.stderr.read().decode(errors="replace"))
    return "".join(other).strip()


def threads_left(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def read_report(report: dict[str, Any], connections: int, cpu: float) -> WrkRun:
    """``report`` is done()'s JSON: the statuses, plus "no answer" for requests sent and not
    answered (a reset connection, or cut off at ``-d``) and wrk's socket errors by kind."""
    duration, answered = report["duration_us"], report["requests"]
    histogram = {value: count for value, count in report["latency_us"]}
    if answered // connections:  # as in wrk.c
        histogram = undo_correction(histogram, duration // (answered // connections))
    latencies = [value / 1e6 for value, count in sorted(histogram.items()) for _ in range(count)]
    statuses: Counter[int | str] = Counter({int(k): n for k, n in report["statuses"].items()})
    statuses["no answer"] = report["sent"] - answered
    statuses.update({f"{kind} errors (wrk)": n for kind, n in report["errors"].items()})
    return WrkRun(duration / 1e6, latencies, +statuses, cpu)


def undo_correction(histogram: dict[int, int], interval: int) -> dict[int, int]:
    """The histogram before wrk 4.1's ``stats_correct``, which for every latency ``n`` of at
    least ``2 * interval`` added a sample at each ``n - k * interval`` above ``interval``:
    from the top down, a value's made-up samples are the real ones above it in steps of
    ``interval``."""
    real: dict[int, int] = {}
    above: Counter[int] = Counter()  # real samples seen so far, by value % interval
    for value in sorted(histogram, reverse=True):
        count = histogram[value] - (above[value % interval] if value > interval else 0)
        above[value % interval] += count
        if count:
            real[value] = count
    return real
