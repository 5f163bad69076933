"""Private Redis and PostgreSQL servers that a fault test may restart, flush or kill.

Other tests (and other people's) use the shared servers; these live in a temporary folder, on
free ports, for one test session. PostgreSQL refuses to run as root, so as root (CI) the
cluster belongs to the ``postgres`` user and its commands run through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.environment import IN_CI


def require_program(path: str | None, what: str) -> str:
    """The path of a server program: skip the test locally when it is missing, fail in CI."""
    if path and Path(path).exists():
        return path
    message = f"{what} is not installed; the fault matrix runs private servers"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout:.0f} s")


class PrivateRedis:
    """``redis-server`` on a free port with no persistence: a restart empties it."""

    def __init__(self) -> None:
        self.binary = require_program(shutil.which("redis-server"), "redis-server")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "redis-server answering")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Killed and started again: every queued message is gone."""
        self.stop()
        self.start()

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


class PrivatePostgres:
    """A throwaway cluster (initdb, pg_ctl) on a free port; databases made from a template."""

    def __init__(self) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=_version)
        self.bin = Path(require_program(str(versions[-1]) if versions else None, "PostgreSQL"))
        self.bin = self.bin.parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="stepmail-faults-pg-"))
        self.data = self.root / "data"
        self._owner = "postgres" if os.geteuid() == 0 else None
        if self._owner:
            record = pwd.getpwnam(self._owner)
            os.chown(self.root, record.pw_uid, record.pw_gid)

    def url(self, database: str, user: str = "stepmail") -> str:
        return f"postgresql://{user}:{user}@127.0.0.1:{self.port}/{database}"

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        self.sql("postgres", "CREATE ROLE stepmail LOGIN PASSWORD 'stepmail' CREATEDB")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def restart(self) -> None:
        """A fast restart: every session is cut, committed data stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def pause(self) -> None:
        """Stop the server and keep its data, for :meth:`start` to bring it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, database: str, statement: str) -> None:
        """Run one statement as the superuser (trust authentication on loopback)."""
        with psycopg.connect(self.url(database, "postgres"), autocommit=True) as connection:
            connection.execute(statement.encode())

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command: Sequence[str] = [str(self.bin / program), *args]
        if self._owner:
            command = ["runuser", "-u", self._owner, "--", *command]
        subprocess.run(
            command, check=check, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parts[-3].split(".") if part.isdigit())
