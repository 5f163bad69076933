"""A SendGrid outage answered with 429 and 5xx: every send fails once and backs off, at
jittered times rather than in one wave; after it, each mail goes exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from orchestrator.db.tables import scheduled_sends
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.faults.harness import Installation, installation, received_once

MAILS = 30
STORM = ("429", "500", "503")
BACKOFF = timedelta(seconds=30)  # the first retry's backoff, before jitter


def failed_once(stepmail: Installation) -> int:
    return stepmail.attempt_outcomes()["transient"]


def test_a_429_and_5xx_storm(tmp_path: Path, database_url: str, redis_url: str) -> None:
    storm = threading.Event()
    storm.set()
    answers = iter(range(10**6))

    def provider(body: dict[str, Any]) -> str:
        return STORM[next(answers) % len(STORM)] if storm.is_set() else "ok"

    with FakeSendGrid() as sendgrid, installation(
        tmp_path, database_url, redis_url, mail_transport="sendgrid",
        sendgrid_api_key=sendgrid.api_key, sendgrid_api_host=sendgrid.url,
    ) as stepmail:  # fmt: skip
        sendgrid.script(provider)
        stepmail.enroll(MAILS)
        stepmail.scheduler()
        stepmail.worker()
        stepmail.wait_for(lambda: failed_once(stepmail) == MAILS, 30, "every send failed once")
        storm.clear()

        tried = len(sendgrid.request_times)
        assert tried == MAILS, "a send was retried during the storm instead of backing off"
        rows = stepmail.welcome_rows().values()
        waits = [row.wake_at - row.updated_at for row in rows]
        assert all(BACKOFF <= wait < BACKOFF * 1.5 for wait in waits)
        assert len({round(w.total_seconds()) for w in waits}) > 5, "they come back in one wave"

        with stepmail.engine.begin() as connection:  # the backoff passes, jitter kept
            for row in rows:
                connection.execute(
                    update(scheduled_sends)
                    .where(scheduled_sends.c.id == row.id, scheduled_sends.c.state == "pending")
                    .values(wake_at=row.wake_at - BACKOFF * 1.5)
                )
        stepmail.wait_until_settled()

        ids = [mail.body["custom_args"]["stepmail_send_id"] for mail in sendgrid.accepted]
        once, twice = received_once(ids)
        assert twice == set(), "SendGrid got a mail twice"
        assert stepmail.states() == {"sent": MAILS}
        assert once == {str(row.id) for row in rows}
        assert stepmail.attempt_outcomes() == {"transient": MAILS, "sent": MAILS}
