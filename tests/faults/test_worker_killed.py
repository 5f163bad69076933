"""A worker process killed with SIGKILL in the middle of its batches, for every transport: the
mails it was handing over may be uncertain (and are reconciled as the README says), every
other mail reaches the transport exactly once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.clock import SystemClock
from orchestrator.runtime import build_runtime
from orchestrator.transports.outbox import STALE_AFTER, TEMP_PREFIX
from tests.fakes.sendgrid_events import EventSigner, sendgrid_event
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.faults.harness import Installation, installation, received_once
from tests.faults.smtp import smtp_server
from tests.support.sendgrid import post_events

MAILS = 40
THREADS = 2  # one worker process; at most this many mails are in hand when it dies
IN_FLIGHT = 4  # SendGrid: each thread posts this many mails at once, a window in hand each


def kill_mid_run(stepmail: Installation, sent: Callable[[], int], after: int) -> None:
    """Start a scheduler and a worker, SIGKILL the worker once ``after`` mails went out, then
    start a fresh worker: it gets the dead one's rows once their lease runs out."""
    stepmail.scheduler()
    victim = stepmail.worker(THREADS)
    stepmail.wait_for(lambda: sent() >= after, 30, f"{after} mails out")
    victim.kill()
    stepmail.worker(THREADS)
    stepmail.wait_until_settled()


def in_hand(stepmail: Installation) -> int:
    """Transport calls the kill interrupted: every one of them was closed as ``lost``, and
    they can only be the calls under way, one per worker thread."""
    outcomes = stepmail.attempt_outcomes()
    assert None not in outcomes, "an attempt was left without an outcome"
    return outcomes["lost"]


def slowly(body: object) -> str:
    """The stand-in takes 50 ms over each mail, so the kill lands mid-batch."""
    time.sleep(0.05)
    return "ok"


def quiet(count: Callable[[], int], still: float = 0.5) -> None:
    """Wait until ``count`` stops changing for ``still`` seconds."""
    last, since = count(), time.monotonic()
    while time.monotonic() - since < still:
        time.sleep(0.05)
        if count() != last:
            last, since = count(), time.monotonic()


def test_smtp_worker_killed_mid_send(tmp_path: Path, database_url: str, redis_url: str) -> None:
    with (
        smtp_server() as smtp,
        installation(tmp_path, database_url, redis_url, **smtp.settings()) as stepmail,
    ):
        stepmail.enroll(MAILS)
        kill_mid_run(stepmail, smtp.count, after=MAILS // 4)

        once, twice = received_once(smtp.keys())
        rows = stepmail.welcome_rows()
        states = stepmail.states()
        assert twice == set(), "a mail reached the SMTP server twice"
        assert set(states) <= {"sent", "unknown"}
        assert states["unknown"] <= THREADS, "more than the mails in hand became uncertain"
        assert in_hand(stepmail) <= THREADS
        assert {k for k, r in rows.items() if r.state == "sent"} <= once
        assert len(once) >= MAILS - THREADS  # all but the mails in hand surely went


def test_outbox_worker_killed_mid_send(tmp_path: Path, database_url: str, redis_url: str) -> None:
    with installation(tmp_path, database_url, redis_url, send_rate_limit=60) as stepmail:
        outbox = stepmail.settings.outbox_dir
        outbox.mkdir(parents=True)
        left = outbox / ".tmp-killed-long-ago.eml"  # what a writer killed yesterday left
        left.write_bytes(b"half a mail")
        yesterday = time.time() - 86400
        os.utime(left, (yesterday, yesterday))
        stepmail.enroll(MAILS)
        kill_mid_run(stepmail, lambda: len(list(outbox.glob("*.eml"))), after=MAILS // 4)

        assert stepmail.states() == {"sent": MAILS}  # idempotent: a mail in hand is redone
        assert in_hand(stepmail) <= THREADS
        names = [p.name for p in outbox.iterdir()]
        mails = sorted(n for n in names if not n.startswith(TEMP_PREFIX))
        assert mails == sorted(f"{key}.eml" for key in stepmail.welcome_rows())
        # a write the kill cut short leaves its temporary file (one per thread at most), swept
        # once it is STALE_AFTER old, like the one from "yesterday"
        fresh = [outbox / n for n in names if n.startswith(TEMP_PREFIX)]
        assert len(fresh) <= THREADS
        assert all(time.time() - p.stat().st_mtime < STALE_AFTER for p in fresh)
        assert not left.exists()


def test_sendgrid_worker_killed_mid_send(tmp_path: Path, database_url: str, redis_url: str) -> None:
    signer = EventSigner()
    with FakeSendGrid() as sendgrid, installation(
        tmp_path, database_url, redis_url, mail_transport="sendgrid",
        sendgrid_api_key=sendgrid.api_key, sendgrid_api_host=sendgrid.url,
        sendgrid_webhook_public_key=signer.public_key, sendgrid_in_flight=IN_FLIGHT,
    ) as stepmail:  # fmt: skip
        sendgrid.script(slowly)
        stepmail.enroll(MAILS)
        stepmail.scheduler()
        victim = stepmail.worker(THREADS)
        stepmail.wait_for(lambda: len(sendgrid.accepted) >= MAILS // 4, 30, "mails out")
        victim.kill()
        quiet(lambda: len(sendgrid.accepted))  # requests the dead worker had sent are answered
        # SendGrid's event webhook reports what it took (processed), well within the window.
        runtime = build_runtime(stepmail.settings)
        try:
            with TestClient(create_app(runtime)) as client:
                events = [sendgrid_event(mail, "processed") for mail in sendgrid.accepted]
                response = post_events(client, signer, SystemClock(), events)
                assert response.status_code == 200, response.text
        finally:
            runtime.close()
        stepmail.worker(THREADS)
        stepmail.wait_until_settled()

        ids = [mail.body["custom_args"]["stepmail_send_id"] for mail in sendgrid.accepted]
        once, twice = received_once(ids)
        assert twice == set(), "SendGrid got a mail twice"
        assert stepmail.states() == {"sent": MAILS}
        assert in_hand(stepmail) <= THREADS * IN_FLIGHT  # the windows under way, no more
        assert {str(row.id) for row in stepmail.welcome_rows().values()} == once
