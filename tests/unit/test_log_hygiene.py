"""A serving process's log holds no secret and no flood (probe M3, M2's accept() flood).

Real requests to a real local server: httpx logged ``HTTP Request: POST <the Slack URL>`` at
INFO, and the path of a Slack incoming webhook is its credential."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from orchestrator.handoff.notify import post_to_slack
from orchestrator.handoff.tasks import TaskView
from orchestrator.processes.log_hygiene import (
    FLOODING_LOGGERS,
    REDACTED,
    RateLimit,
    RedactSecrets,
    configure_process_logging,
    install_log_hygiene,
)
from orchestrator.settings import load_settings

SLACK_PATH = "/services/T0SECRET/B0SECRET/XOXBSECRETTOKEN"
API_KEY = "api-key-0123456789abcdef"


class _NotFound(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slack_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{SLACK_PATH}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def log_text(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger writing everything at INFO to a string, as ``stepmail api`` does."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", logging.INFO)
    for name in ("httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    for name in FLOODING_LOGGERS:  # install_log_hygiene adds to them: undone after the test
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "filters", list(logger.filters))
    yield text


def task() -> TaskView:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    return TaskView(
        id=1,
        external_id="a1",
        customer_name="Hanako",
        company="Acme",
        tier="high",
        kind="new_high_touch",
        reason="contract value",
        status="open",
        assignee=None,
        created_at=now,
        due_at=now,
        closed_at=None,
        notified_at=None,
    )


def test_a_slack_notification_leaves_no_secret_in_the_log(
    slack_url: str, log_text: io.StringIO
) -> None:
    install_log_hygiene(load_settings(_env_file=None, slack_webhook_url=slack_url))
    post_to_slack(slack_url, task())
    logged = log_text.getvalue()
    assert "Slack notification failed (HTTPStatusError)" in logged  # the log still works
    assert "XOXBSECRETTOKEN" not in logged, logged


def test_a_secret_in_any_record_or_traceback_is_redacted(log_text: io.StringIO) -> None:
    settings = load_settings(
        _env_file=None,
        api_key=API_KEY,
        database_url="postgresql://stepmail:db-pass-4242@127.0.0.1/x",
    )
    install_log_hygiene(settings)
    log = logging.getLogger("orchestrator.somewhere")
    log.warning("header was Bearer %s", API_KEY)
    try:
        raise RuntimeError(f"cannot connect to {settings.database_url}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("third.party").error("GET https://user:pw-777@host.jp/x")
    logged = log_text.getvalue()
    for secret in (API_KEY, "db-pass-4242", "pw-777"):
        assert secret not in logged, logged
    assert logged.count(REDACTED) >= 3


def test_one_logging_set_up_redacts_uvicorns_records_too(log_text: io.StringIO) -> None:
    """uvicorn runs with ``log_config=None``: its records reach the process's one handler,
    which redacts secrets and capability tokens; set up twice, it is still one handler."""
    stream = io.StringIO()
    settings = load_settings(_env_file=None, api_key=API_KEY)
    configure_process_logging(settings, stream)
    configure_process_logging(settings, stream)
    [handler] = logging.getLogger().handlers
    assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1
    logging.getLogger("uvicorn.error").warning("bad key %s on /unsubscribe/tok-9999", API_KEY)
    logged = stream.getvalue()
    assert logged.count("bad key") == 1, logged
    assert API_KEY not in logged and "tok-9999" not in logged, logged


def test_a_flood_from_outside_is_one_line_a_window(log_text: io.StringIO) -> None:
    """asyncio logged a traceback for each failed ``accept()``: 307,197 records a minute."""
    now = [0.0]
    limit = RateLimit(window=10, monotonic=lambda: now[0])
    flooding = logging.getLogger("asyncio")
    flooding.filters = [limit]  # the fixture restores the logger's own
    try:
        for _ in range(10_000):
            flooding.error("socket.accept() out of system resource")
        now[0] = 11
        flooding.error("socket.accept() out of system resource")
        logging.getLogger("orchestrator.elsewhere").error("not limited")
        logging.getLogger("orchestrator.elsewhere").error("not limited")
    finally:
        flooding.filters = []
    lines = log_text.getvalue().splitlines()
    assert lines == [
        "ERROR asyncio: socket.accept() out of system resource",
        "ERROR asyncio: socket.accept() out of system resource "
        "(9999 more like this in the last 10 s)",
        "ERROR orchestrator.elsewhere: not limited",
        "ERROR orchestrator.elsewhere: not limited",
    ]
