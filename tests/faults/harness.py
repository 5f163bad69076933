"""One Stepmail installation per fault test, run as an operator runs it: ``dramatiq workers``,
``stepmail scheduler`` and ``stepmail api`` as separate processes configured only through the
environment, on private PostgreSQL and Redis servers the test may restart.

What the test then checks is what left (the mails each fake transport received, per
idempotency key) against what the database says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from orchestrator.db.engine import make_engine
from orchestrator.db.tables import delivery_attempts, scheduled_sends
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.enrollment.store import enroll_signup
from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.states import ACTIVE_SEND_STATES
from orchestrator.runtime import enrollment_rules
from orchestrator.settings import Settings
from tests.support.environment import ROOT, SECRET, make_settings
from tests.support.sendgrid import write_journeys

STEPMAIL = str(Path(sys.executable).with_name("stepmail"))
LEASE = 3  # seconds: a dead worker's rows come back quickly
SMTP_TIMEOUT = 1.0  # below half the lease, as start-up demands
API_KEY = "fault-matrix-api-key"
ACTIVE = {state.value for state in ACTIVE_SEND_STATES}


@dataclass
class Service:
    """A process of the installation, in its own process group so a kill takes it whole."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """``kill -9``: nothing after this instant runs, no clean-up, no goodbye."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Installation:
    """Settings (for this process) and the same as ``STEPMAIL_*`` variables (for the others)."""

    settings: Settings
    env: dict[str, str]
    workdir: Path
    engine: Engine
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, command: list[str], **extra_env: str) -> Service:
        log = self.workdir / f"{name}-{len(self.services)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=self.workdir,  # no stray .env is read
                env={**self.env, **extra_env},
                start_new_session=True,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def worker(self, threads: int = 2) -> Service:
        command = [sys.executable, "-m", "dramatiq", "workers", "--processes", "1"]
        return self.start("worker", [*command, "--threads", str(threads)])

    def scheduler(self) -> Service:
        return self.start("scheduler", [STEPMAIL, "scheduler"])

    def api(self, port: int) -> Service:
        return self.start("api", [STEPMAIL, "api"], STEPMAIL_PORT=str(port))

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(service.tail() for service in self.services)

    # -- what the database says ------------------------------------------------------------

    def enroll(self, count: int, prefix: str = "c", over: float = 0.0) -> None:
        """``count`` customers, each with one welcome mail due: all now, or one after the
        other over the next ``over`` seconds."""
        journeys = load_journeys(self.settings.journeys_dir)
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            for n in range(count):
                signup = SignupRequest(
                    external_id=f"{prefix}-{n}",
                    email=f"{prefix}-{n}@customer.example",
                    name=f"Customer {n}",
                    locale=("ja", "en")[n % 2],
                    tier=("high", "low", "tech")[n % 3],
                    signed_up_at=now + timedelta(seconds=over * n / count),
                )
                enroll_signup(session, signup, journeys, enrollment_rules(self.settings), now)

    def welcome_rows(self) -> dict[str, Any]:
        """Every welcome send by its idempotency key (``stepmail-<enrollment>-welcome``)."""
        query = select(scheduled_sends).where(scheduled_sends.c.step_id == "welcome")
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {f"stepmail-{row.enrollment_id}-welcome": row for row in rows}

    def states(self) -> Counter[str]:
        return Counter(row.state for row in self.welcome_rows().values())

    def attempt_outcomes(self) -> Counter[str | None]:
        """How the welcome sends' transport calls ended (``lost``: its worker died in it)."""
        query = (
            select(delivery_attempts.c.outcome)
            .join(scheduled_sends, scheduled_sends.c.id == delivery_attempts.c.scheduled_send_id)
            .where(scheduled_sends.c.step_id == "welcome")
        )
        with self.engine.connect() as connection:
            return Counter(connection.execute(query).scalars())

    def uncertain(self) -> str:
        """Each ``unknown`` welcome send with its reason and attempts: why it is uncertain."""
        attempts = delivery_attempts
        query = (
            select(scheduled_sends.c.id, scheduled_sends.c.reason, attempts.c.outcome)
            .add_columns(attempts.c.error, attempts.c.started_at, attempts.c.finished_at)
            .join(attempts, attempts.c.scheduled_send_id == scheduled_sends.c.id, isouter=True)
            .where(scheduled_sends.c.step_id == "welcome", scheduled_sends.c.state == "unknown")
            .order_by(scheduled_sends.c.id, attempts.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return "\n".join(" | ".join(str(value) for value in row) for row in rows)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(
            f"{what} not reached in {timeout:.0f} s: {self.states()}\n{self.logs()}"
        )

    def wait_until_settled(self, timeout: float = 40) -> None:
        """Until no welcome send is waiting, claimed, in flight or being reconciled."""
        self.wait_for(lambda: not ACTIVE & set(self.states()), timeout, "every send settled")


def installation_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a process see the installation ``settings`` describe."""
    values = {
        "STEPMAIL_ENVIRONMENT": "development",
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_REDIS_URL": str(settings.redis_url),
        "STEPMAIL_QUEUE_NAME": settings.queue_name,
        "STEPMAIL_MAIL_TRANSPORT": settings.mail_transport,
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_SIGNUP_HOOK_SECRET": SECRET,
        "STEPMAIL_UNSUBSCRIBE_SECRET": "fault-matrix-unsubscribe-secret",
        "STEPMAIL_API_KEY": API_KEY,
        "STEPMAIL_PUBLIC_BASE_URL": settings.public_base_url,
        "STEPMAIL_SENDER_NAME": settings.sender_name,
        "STEPMAIL_SENDER_EMAIL": settings.sender_email,
        "STEPMAIL_SENDER_POSTAL_ADDRESS": settings.sender_postal_address,
        "STEPMAIL_SENDER_CONTACT": settings.sender_contact,
        "STEPMAIL_CSM_TEAM_EMAIL": "cs-team@acme.example",
        "STEPMAIL_SEND_LEASE": str(settings.send_lease),
        "STEPMAIL_DISPATCH_INTERVAL": str(settings.dispatch_interval),
        "STEPMAIL_DISPATCH_MESSAGE_SIZE": str(settings.dispatch_message_size),
        "STEPMAIL_SMTP_HOST": settings.smtp_host,
        "STEPMAIL_SMTP_PORT": str(settings.smtp_port),
        "STEPMAIL_SMTP_TIMEOUT": str(settings.smtp_timeout),
        "STEPMAIL_SENDGRID_API_HOST": settings.sendgrid_api_host,
        "STEPMAIL_SENDGRID_TIMEOUT": str(settings.sendgrid_timeout),
        "STEPMAIL_SENDGRID_IN_FLIGHT": str(settings.sendgrid_in_flight),
        "STEPMAIL_RECONCILIATION_WINDOW": str(settings.reconciliation_window),
        "STEPMAIL_SEND_RATE_LIMIT": str(settings.send_rate_limit),
        # Off unless a test asks: several installations (and helpers) share this host's ports.
        "STEPMAIL_SCHEDULER_METRICS_PORT": "0",
        "STEPMAIL_WORKER_METRICS_PORT": "0",
    }
    if settings.sendgrid_api_key is not None:
        values["STEPMAIL_SENDGRID_API_KEY"] = settings.sendgrid_api_key.get_secret_value()
    if settings.sendgrid_webhook_public_key:
        values["STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY"] = settings.sendgrid_webhook_public_key
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")}
    return {**environment, **values, **extra}


@contextmanager
def installation(
    workdir: Path, database_url: str, redis_url: str, **overrides: Any
) -> Iterator[Installation]:
    """An installation on the given (private) servers; its processes are stopped at the end."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "queue_name": f"faults-{os.getpid()}-{time.monotonic_ns()}",
        "journeys_dir": write_journeys(workdir / "journeys", "onboarding"),
        "templates_dir": ROOT / "templates" / "mail",
        "send_lease": LEASE,
        "dispatch_interval": 0.2,
        "dispatch_message_size": 10,
        "smtp_timeout": SMTP_TIMEOUT,
        "sendgrid_timeout": SMTP_TIMEOUT,
        "reconciliation_window": 2,
        **overrides,
    }
    settings = make_settings(workdir, database_url, **values)
    built = Installation(settings, installation_env(settings), workdir, make_engine(database_url))
    try:
        yield built
    finally:
        built.stop_all()


def received_once(keys: Iterable[str]) -> tuple[set[str], set[str]]:
    """The keys received exactly once, and those received more than once."""
    counts = Counter(keys)
    return {k for k, n in counts.items() if n == 1}, {k for k, n in counts.items() if n > 1}
