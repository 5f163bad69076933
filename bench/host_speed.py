"""How fast this host runs Python at the moment a bench measures.

The development VM's speed drifts by 20-40% within minutes (bench/README, sessions 19-21):
the same code sent 2,184 mails/s at 0.57 ms of worker CPU a mail in one minute and 1,387 at
0.92 ms ten minutes later, and the kernel reported no steal time in either. A whole run
cannot tell a slower change from a slower minute, so the benches print, beside their numbers,
how long a fixed piece of pure Python took just before. It is a thermometer, not a
correction: the benches never scale their numbers by it. It catches a sick host (a loop of
6-7 ms where 4 is usual), but in session 21 it did not follow the drift: the loop read
3.8-4.3 ms while the same code's workers took 0.53-0.66 ms a mail (bench/README).

    .venv/bin/python bench/host_speed.py        # the loop alone, five times
"""

from __future__ import annotations

import time

LOOPS = 20_000


def _workload(loops: int) -> int:
    """What the hot paths do most: dict lookups, small strings built and joined, calls."""
    row = {"id": 0, "name": "Ada", "company": "Example KK", "tier": "low", "locale": "ja"}
    parts: list[str] = []
    total = 0
    for n in range(loops):
        row["id"] = n
        parts.append(f"<p>{row['name']} ({row.get('company', '')}) #{row['id']}</p>")
        if len(parts) == 16:
            total += len("".join(parts))
            parts.clear()
    return total


def loop_ms(rounds: int = 7) -> float:
    """The fastest of ``rounds`` runs of the calibration loop, in ms (about 4.1 ms on the
    development VM in a fast minute). The fastest, not the median: a round that waited for a
    core behind another process measures that process, not the host."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        _workload(LOOPS)
        times.append(1000 * (time.perf_counter() - started))
    return min(times)


def describe(ms: float) -> str:
    return f"host speed: calibration loop {ms:.2f} ms (lower is faster; see bench/host_speed.py)"


if __name__ == "__main__":
    for _ in range(5):
        print(describe(loop_ms()))
