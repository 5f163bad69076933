"""How long the disk takes to flush a small write, while a bench measures: a thermometer
for the disk, as ``host_speed.py`` is one for the CPU.

Every request the API answers with ``202`` waits for PostgreSQL to flush its commit to disk
(``fdatasync`` of the WAL: a ``202`` means stored). On the development VM that flush usually
takes under a millisecond, but the host's disk stalls it, idle or not, for 100-700 ms at a
time, several times a minute in a bad stretch. Every request in flight waits out the stall,
so one stall in a two-second run is its p99. In session 24 each ``COMMIT`` over 80 ms in
PostgreSQL's log of slow statements ended within about 10 ms of a stall this probe saw, of
about the same length (bench/README, "Session 24").

The probe appends 8 kB to a file of its own and ``fdatasync``\\ s it every 20 ms, from a
thread (the syscalls release the GIL), in a directory on the database's disk. It reads the
disk, not PostgreSQL: it never touches the database's files.

    .venv/bin/python bench/disk_flush.py                      # 30 s, each second's worst
    .venv/bin/python bench/disk_flush.py --seconds 120 --dir /var/lib/postgresql
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = b"\0" * 8192
INTERVAL = 0.02  # seconds between flushes: 50 a second, ~400 kB/s
STALL_MS = 50.0  # a flush this slow is a stall (it alone would break a 50 ms p99)
REWIND_EVERY = 1000  # flushes between truncations: the file stays under 8 MB


@dataclass
class Flushes:
    """The flushes one probe timed: (wall-clock second it ended in, milliseconds)."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def millis(self) -> list[float]:
        return sorted(ms for _, ms in self.samples)

    def stalls(self, threshold: float = STALL_MS) -> list[tuple[float, float]]:
        return [(at, ms) for at, ms in self.samples if ms >= threshold]

    def describe(self) -> str:
        """One line: how many flushes, their median and worst, the stalls and when."""
        ms = self.millis()
        if not ms:
            return "disk flush: no sample"
        stalls = self.stalls()
        line = (
            f"disk flush (8 kB + fdatasync every {1000 * INTERVAL:.0f} ms): {len(ms)} flushes, "
            f"p50 {ms[len(ms) // 2]:.2f} ms, max {ms[-1]:.1f} ms; "
            f"{len(stalls)} of {STALL_MS:.0f} ms or more"
        )
        if stalls:
            worst = sorted(stalls, key=lambda s: -s[1])[:3]
            line += " (" + ", ".join(f"{ms:.0f} ms at {_clock(at)}" for at, ms in worst) + ")"
        return line


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 10)}"


def _probe(fd: int, stop: threading.Event, flushes: Flushes) -> None:
    count = 0
    while not stop.is_set():
        started = time.perf_counter()
        os.write(fd, BLOCK)
        os.fdatasync(fd)
        flushes.samples.append((time.time(), 1000 * (time.perf_counter() - started)))
        count += 1
        if count % REWIND_EVERY == 0:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        stop.wait(INTERVAL)


@contextmanager
def probing(directory: str | None = None) -> Iterator[Flushes]:
    """Time a flush every ``INTERVAL`` in ``directory`` (the temporary directory if None)
    while the block runs; the ``Flushes`` fill as it goes and are complete after it."""
    folder = Path(directory or tempfile.gettempdir())
    path = folder / f"stepmail-disk-flush-{os.getpid()}-{threading.get_ident()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # here: a bad dir raises
    flushes, stop = Flushes(), threading.Event()
    thread = threading.Thread(target=_probe, args=(fd, stop, flushes), daemon=True)
    thread.start()
    try:
        yield flushes
    finally:
        stop.set()
        thread.join()
        os.close(fd)
        path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--dir", default=None, help="on the database's disk (default: $TMPDIR)")
    args = parser.parse_args(argv)
    with probing(args.dir) as flushes:
        end, shown = time.monotonic() + args.seconds, 0
        while time.monotonic() < end:
            time.sleep(1.0)
            second, shown = flushes.samples[shown:], len(flushes.samples)
            if second:
                worst = max(ms for _, ms in second)
                mark = "  stall" if worst >= STALL_MS else ""
                at = _clock(second[-1][0])[:8]
                print(f"{at} {len(second):3d} flushes, max {worst:7.1f} ms{mark}")
    print(flushes.describe())


if __name__ == "__main__":
    main()
