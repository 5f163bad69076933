"""The scheduler killed with SIGKILL while it dispatches: rows it claimed but never enqueued
come back when their lease runs out, a new scheduler carries on, every mail goes once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.faults.harness import Installation, installation, received_once
from tests.faults.smtp import smtp_server

MAILS = 40


def overdue(stepmail: Installation) -> int:
    now = datetime.now(UTC)
    return sum(r.state == "pending" and r.due_at < now for r in stepmail.welcome_rows().values())


def test_scheduler_killed_mid_run(tmp_path: Path, database_url: str, redis_url: str) -> None:
    with (
        smtp_server() as smtp,
        installation(tmp_path, database_url, redis_url, **smtp.settings()) as stepmail,
    ):
        stepmail.worker()
        first = stepmail.scheduler()
        # Enrolled once the scheduler ticks, so its start-up time (seconds on a loaded machine)
        # cannot let every mail fall due before its first claim.
        stepmail.wait_for(lambda: "scheduler started" in first.log.read_text(), 30, "a tick")
        stepmail.enroll(MAILS, over=3.0)  # due one after the other: the scheduler keeps busy
        stepmail.wait_for(lambda: smtp.count() >= 5, 30, "the first mails out")
        first.kill()
        stepmail.wait_for(lambda: overdue(stepmail) > 0, 10, "mails due with no scheduler")
        stepmail.scheduler()
        stepmail.wait_until_settled()

        once, twice = received_once(smtp.keys())
        assert twice == set(), "a mail reached the SMTP server twice"
        assert stepmail.states() == {"sent": MAILS}
        assert once == set(stepmail.welcome_rows())
