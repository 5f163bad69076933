"""SIGTERM, as an orchestrator sends it on a deploy, to real ``stepmail scheduler`` and
``stepmail worker`` processes in the middle of their work: each says so in its log, finishes
what it holds (the tick's claimed rows dispatched, the webhook round recorded, the window of
mails in a worker's hands sent, the rest of its batch handed back, due at once) and exits 0;
nothing is lost, nothing goes twice. Their metrics ports answer ``/healthz`` and ``/metrics``
with the counts of the real sends while they run."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from orchestrator.clock import SystemClock
from orchestrator.db.tables import webhook_messages
from orchestrator.services.webhooks import add_endpoint, outgoing_webhook_rules
from tests.faults.harness import STEPMAIL, Installation, Service, installation, received_once
from tests.faults.servers import free_port
from tests.faults.smtp import smtp_server
from tests.support.webhook_receiver import webhook_receiver

MAILS = 120
THREADS = 2


def terminate(service: Service, timeout: float = 20) -> int:
    """SIGTERM to the service's own process (what ``docker stop`` and systemd with
    ``KillMode=mixed`` send), then wait: a worker group passes it on to its processes."""
    service.process.send_signal(signal.SIGTERM)
    try:
        return service.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        service.kill()
        raise AssertionError(f"{service.name} ignored SIGTERM\n{service.tail(40)}") from None


def scrape(port: int, name: str) -> float:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    )


def wait_http_ok(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 in {timeout:.0f} s")


def worker(stepmail: Installation, metrics_port: int) -> Service:
    command = [STEPMAIL, "worker", "--processes", "1", "--threads", str(THREADS)]
    return stepmail.start("worker", command, STEPMAIL_WORKER_METRICS_PORT=str(metrics_port))


def test_a_worker_stopped_mid_batch_finishes_the_mails_in_hand(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    with (
        smtp_server() as smtp,
        installation(tmp_path, database_url, redis_url, **smtp.settings()) as stepmail,
    ):
        stepmail.enroll(MAILS)
        port = free_port()
        first = worker(stepmail, port)
        stepmail.scheduler()
        stepmail.wait_for(lambda: smtp.count() >= 5, 40, "the first mails out")
        wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        # Counted as each batch ends, by the worker process; read through the group's server.
        stepmail.wait_for(lambda: scrape(port, "stepmail_sends_total") >= 1, 20, "sends counted")
        assert scrape(port, "stepmail_transport_duration_seconds_count") >= 1

        assert terminate(first) == 0
        log = first.log.read_text()
        assert "stopping: no new messages; finishing the windows in hand" in log, log
        assert "stopped cleanly" in log, log
        outcomes = stepmail.attempt_outcomes()
        assert "lost" not in outcomes and None not in outcomes, outcomes
        assert "unknown" not in stepmail.states()
        assert "sending" not in stepmail.states()  # none waits for its lease
        # The stop took effect mid-run: the worker took no more messages once it had finished
        # its batches (how many mails that is depends on how fast the signal travels through
        # Dramatiq's processes on a loaded machine, so no count is asserted).
        assert smtp.count() < MAILS, "the stop did not land mid-run"

        worker(stepmail, free_port())
        stepmail.wait_until_settled()
        once, twice = received_once(smtp.keys())
        assert twice == set(), "a mail reached the SMTP server twice"
        assert len(once) == MAILS
        assert set(stepmail.states()) == {"sent"}


def test_a_scheduler_stopped_mid_run_dispatches_its_tick_and_records_its_webhooks(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    with (
        smtp_server() as smtp,
        webhook_receiver() as receiver,
        installation(tmp_path, database_url, redis_url, **smtp.settings()) as stepmail,
    ):
        add_endpoint(
            stepmail.engine,
            receiver.url,
            ["mail.sent"],
            rules=outgoing_webhook_rules(stepmail.settings),
            clock=SystemClock(),
        )
        stepmail.enroll(MAILS, over=4.0)  # due one after the other: every tick claims some
        port = free_port()
        scheduler = stepmail.start(
            "scheduler", [STEPMAIL, "scheduler"], STEPMAIL_SCHEDULER_METRICS_PORT=str(port)
        )
        worker(stepmail, free_port())
        stepmail.wait_for(lambda: smtp.count() >= MAILS // 4, 40, "a quarter of the mails out")
        stepmail.wait_for(lambda: len(receiver.received) >= 1, 20, "a webhook delivered")
        wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        assert scrape(port, "stepmail_scheduler_claimed_rows_total") >= MAILS // 4
        assert scrape(port, "stepmail_webhook_deliveries_total") >= 1

        assert terminate(scheduler) == 0
        log = scheduler.log.read_text()
        assert "SIGTERM received: finishing the tick in hand, then stopping" in log, log
        assert "scheduler stopped cleanly" in log, log
        assert "webhook delivery stopped" in log, log
        with stepmail.engine.connect() as connection:
            states = set(connection.execute(select(webhook_messages.c.state)).scalars())
        assert "delivering" not in states, "a webhook claim was left behind"

        stepmail.scheduler()  # a fresh one picks up what is left
        stepmail.wait_until_settled()
        stepmail.wait_for(
            lambda: len(receiver.received) >= MAILS // 3, 30, "the rest of the webhooks"
        )
        once, twice = received_once(smtp.keys())
        assert twice == set() and len(once) == MAILS
