"""``dramatiq workers`` as real separate processes, configured only through the environment,
as an operator would run them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from orchestrator.clock import SystemClock
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.settings import Settings
from tests.conftest import _reset
from tests.support.environment import ROOT, require_server


def fresh_servers() -> dict[str, str]:
    """Real PostgreSQL (migrated, emptied) and Redis (flushed), plus a queue of this test's
    own: the keyword arguments for the test's settings."""
    database_url = require_server("STEPMAIL_TEST_POSTGRES_URL")
    redis_url = require_server("STEPMAIL_TEST_REDIS_URL")
    upgrade(database_url)
    engine = make_engine(database_url)
    _reset(engine)
    engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    return {"database_url": database_url, "redis_url": redis_url, "queue_name": queue}


@contextmanager
def real_time_runtime(settings: Settings) -> Iterator[Runtime]:
    """The test process's own runtime, on the real clock the worker processes use too."""
    runtime = build_runtime(settings, clock=SystemClock())
    try:
        yield runtime
    finally:
        runtime.close()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a worker process see the same installation as ``settings``."""
    return {
        **os.environ,
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_REDIS_URL": str(settings.redis_url),
        "STEPMAIL_QUEUE_NAME": settings.queue_name,
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_PUBLIC_BASE_URL": settings.public_base_url,
        "STEPMAIL_SENDER_EMAIL": settings.sender_email,
        "STEPMAIL_ENVIRONMENT": settings.environment,
        "STEPMAIL_SIGNUP_HOOK_SECRET": settings.signup_hook_key(),  # unsubscribe keys agree
        "STEPMAIL_WORKER_METRICS_PORT": "0",  # other tests and helpers share the host
        **extra,
    }


class WorkerProcesses:
    """Starts worker processes, each in its own process group so a test can kill one whole."""

    def __init__(self, env: dict[str, str], threads: int = 2) -> None:
        self.env, self.threads = env, threads
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "dramatiq", "workers", "--processes", "1"]
        process = subprocess.Popen(
            [*command, "--threads", str(self.threads)],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def worker_processes(env: dict[str, str], threads: int = 2) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(env, threads)
    try:
        yield workers
    finally:
        workers.stop_all()
