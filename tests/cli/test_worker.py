"""``stepmail worker`` becomes Dramatiq's command line (``python -m
orchestrator.processes.worker``: ``dramatiq workers`` under our logging) with the thread count of
``STEPMAIL_WORKER_THREADS`` unless ``--threads`` says otherwise (it used to ignore the
setting). Read from the real process's command line after it replaced itself."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.environment import require_server
from tests.support.processes import BIN, clean_environ, development_env

HANG = 30  # a hang guard, not a timing assertion


def dramatiq_argv(env: dict[str, str], cwd: Path, *flags: str) -> list[str]:
    """Start ``stepmail worker``, wait until it has exec'd Dramatiq, and return its argv."""
    process = subprocess.Popen(
        [str(BIN / "stepmail"), "worker", *flags],
        env={**clean_environ(), **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline and process.poll() is None:
            argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
            if "orchestrator.processes.worker" in argv:
                return argv
            time.sleep(0.05)
        pytest.fail(f"stepmail worker never became dramatiq (exit {process.poll()})")
    finally:
        process.terminate()
        process.wait(timeout=HANG)


def threads(argv: list[str]) -> str:
    return argv[argv.index("--threads") + 1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    redis_url = require_server("STEPMAIL_TEST_REDIS_URL")
    return {**development_env(tmp_path), "STEPMAIL_REDIS_URL": redis_url}


def test_the_thread_count_comes_from_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    argv = dramatiq_argv({**env, "STEPMAIL_WORKER_THREADS": "3"}, tmp_path)
    assert threads(argv) == "3"
    assert argv[argv.index("--processes") + 1] == "1"


def test_the_flag_wins_over_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    argv = dramatiq_argv({**env, "STEPMAIL_WORKER_THREADS": "3"}, tmp_path, "--threads", "5")
    assert threads(argv) == "5"
