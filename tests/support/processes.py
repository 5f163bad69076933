"""Run the real ``stepmail`` (or ``dramatiq workers``) in a subprocess, as an operator would,
with exactly the ``STEPMAIL_*`` variables a test gives and no ``.env`` (its cwd is a temp dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.db.migrate import upgrade
from tests.support.environment import ROOT, STANDARD_JOURNEYS

BIN = Path(sys.executable).parent
# A hang guard, not a timing assertion: a start-up check that fails must end the process; a
# process that starts serving instead would run until this.
HANG = 60

PRODUCTION_READY = {
    "STEPMAIL_ENVIRONMENT": "production",
    "STEPMAIL_SIGNUP_HOOK_SECRET": "4f1c9e2b7a6d3e8f0a5b1c2d3e4f5a6b",
    "STEPMAIL_SENDER_NAME": "Relay Cloud",
    "STEPMAIL_SENDER_EMAIL": "onboarding@relaycloud.co.jp",
    "STEPMAIL_SENDER_POSTAL_ADDRESS": "2-4-1 Shibakoen, Minato-ku, Tokyo 105-0011, Japan",
    "STEPMAIL_SENDER_CONTACT": "support@relaycloud.co.jp",
    "STEPMAIL_CSM_TEAM_EMAIL": "cs@relaycloud.co.jp",
    "STEPMAIL_PUBLIC_BASE_URL": "https://mail.relaycloud.co.jp",
}


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """Everything the process said, stdout then stderr, without blank lines."""
        return [line for line in (self.stdout + self.stderr).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environ() -> dict[str, str]:
    """The test process's environment without any STEPMAIL_* variable."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("STEPMAIL_")}


def development_env(tmp_path: Path, migrated: bool = True) -> dict[str, str]:
    """Working settings for a local service in ``tmp_path``: a test changes one to break it."""
    database = tmp_path / "stepmail.db"
    if migrated:
        upgrade(f"sqlite:///{database}")
    return {
        "STEPMAIL_ENVIRONMENT": "development",
        "STEPMAIL_DATABASE_URL": f"sqlite:///{database}",
        "STEPMAIL_JOURNEYS_DIR": str(STANDARD_JOURNEYS),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "STEPMAIL_PORT": str(free_port()),
        "STEPMAIL_SCHEDULER_METRICS_PORT": "0",  # other tests and helpers share the host
        "STEPMAIL_WORKER_METRICS_PORT": "0",
    }


def run_command(
    command: list[str], env: Mapping[str, str], cwd: Path, timeout: float = HANG
) -> Finished:
    done = subprocess.run(
        command,
        env={**clean_environ(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def stepmail(*args: str, env: Mapping[str, str], cwd: Path) -> Finished:
    return run_command([str(BIN / "stepmail"), *args], env, cwd)


def dramatiq_workers(env: Mapping[str, str], cwd: Path) -> Finished:
    command = [sys.executable, "-m", "dramatiq", "workers", "--processes", "1", "--threads", "1"]
    return run_command(command, env, cwd)


def error_lines(finished: Finished) -> list[str]:
    return [line for line in finished.lines if line.startswith("error: ")]
