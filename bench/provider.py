"""The SendGrid stand-in the workers post to, run in a child process of the bench."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from fast_sendgrid import serve as serve_fast

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class FakeStats:
    """What the fake has seen so far."""

    accepted: int
    invalid: int
    connections: int


class FakeSendGridProcess:
    """The SendGrid stand-in, in a child process: by default the minimal 202 server of
    ``fast_sendgrid`` (answering after ``latency`` seconds); with ``validating``, the tests'
    ``FakeSendGrid``, which checks every body against the OpenAPI description but costs ~1.2
    ms of CPU a request.

    Either lives in its own process because a server's handler threads sharing this
    process's GIL slowed the scheduler's Redis enqueue tenfold: a bench artefact.
    """

    def __init__(self, api_key: str, *, validating: bool, latency: float = 0.0) -> None:
        if validating and latency:
            raise SystemExit("the validating fake answers at once: no latency with it")
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        target: Callable[..., None] = _serve_fake if validating else serve_fast
        args: tuple[object, ...] = (child, api_key) if validating else (child, api_key, latency)
        self._process = context.Process(target=target, args=args, daemon=True)
        self._process.start()
        child.close()
        self.pid: int = self._process.pid or 0
        self.url: str = self._conn.recv()

    def stats(self) -> FakeStats:
        self._conn.send("stats")
        accepted, invalid, connections = self._conn.recv()
        return FakeStats(accepted, invalid, connections)

    def stop(self) -> None:
        """Ask politely, then terminate: the child is ours and must not outlive a phase."""
        try:
            self._conn.send("stop")
            self._conn.recv()
        except (EOFError, OSError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()


def _serve_fake(conn: Connection, api_key: str) -> None:
    """Child process body of the validating fake: serve, answer "stats", exit on "stop"."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `tests` is not an installed package
    from tests.fakes.sendgrid_server import FakeSendGrid

    fake = FakeSendGrid(api_key).start()
    conn.send(fake.url)
    while (command := conn.recv()) != "stop":
        assert command == "stats"
        conn.send((len(fake.accepted), len(fake.invalid), fake.connections))
    fake.stop()
    conn.send(None)
