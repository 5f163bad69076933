"""Unsubscribe tokens (capabilities: whoever holds one acts for its recipient) never reach the
access log: the filter rewrites them, and ``stepmail api`` installs it in uvicorn."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.db.migrate import upgrade
from orchestrator.observability.redaction import RedactCapabilities, redact
from tests.support.environment import ROOT, SECRET, STANDARD_JOURNEYS

TOKEN = "Ab3kZ9.capability-that-must-not-be-logged"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/unsubscribe/{TOKEN}", "/unsubscribe/[redacted]"),
        (f"/unsubscribe/{TOKEN}/topics", "/unsubscribe/[redacted]/topics"),
        (f"/unsubscribe/{TOKEN}?done=saved", "/unsubscribe/[redacted]?done=saved"),
        ("/v1/events", "/v1/events"),
    ],
)
def test_redact_hides_the_token_and_keeps_the_rest(path: str, expected: str) -> None:
    assert redact(path) == expected


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/unsubscribe/{TOKEN}", "1.1", 200),
        None,
    )

    assert RedactCapabilities().filter(record)

    assert TOKEN not in record.getMessage()
    assert "/unsubscribe/[redacted]" in record.getMessage()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_stepmail_api_keeps_tokens_out_of_its_access_log(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(database)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")}
    env.update(
        STEPMAIL_ENVIRONMENT="development",  # the production policy is not what this tests
        STEPMAIL_DATABASE_URL=database,
        STEPMAIL_PORT=str(port),
        STEPMAIL_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        STEPMAIL_JOURNEYS_DIR=str(STANDARD_JOURNEYS),
        STEPMAIL_TEMPLATES_DIR=str(ROOT / "templates" / "mail"),
        STEPMAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        STEPMAIL_SIGNUP_HOOK_SECRET=SECRET,
        STEPMAIL_UNSUBSCRIBE_SECRET="test-unsubscribe-secret",
        STEPMAIL_SENDER_EMAIL="onboarding@acme.example",
        STEPMAIL_SENDER_CONTACT="support@acme.example",
        STEPMAIL_CSM_TEAM_EMAIL="cs@acme.example",
    )
    command = [sys.executable, "-c", "from orchestrator.cli import main; main()", "api"]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server)
        httpx.get(f"{base}/unsubscribe/{TOKEN}")
        httpx.post(f"{base}/unsubscribe/{TOKEN}", content=b"List-Unsubscribe=One-Click")
        httpx.post(f"{base}/unsubscribe/{TOKEN}/topics", content=b"topic=onboarding")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    assert output.count("/unsubscribe/[redacted]") == 3, output
    assert "capability-that-must-not-be-logged" not in output


def _wait_until_up(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output, _ = server.communicate()
            pytest.fail(f"stepmail api exited: {output}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("stepmail api did not start within 30 s")


def test_every_capability_route_is_redacted(tmp_path: Path) -> None:
    """A route taking a token in its path must list its prefix in observability/redaction.py."""
    from orchestrator.api.app import create_app
    from orchestrator.db.migrate import upgrade
    from orchestrator.runtime import build_runtime
    from tests.support.environment import make_settings

    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)  # the runtime brings the journeys' versions up to date at start
    runtime = build_runtime(make_settings(tmp_path, url))
    paths = {spec_path for spec_path in create_app(runtime).openapi()["paths"]}
    runtime.close()
    capability_paths = [path for path in paths if "{token" in path]
    assert capability_paths
    for path in capability_paths:
        filled = path.replace("{token}", TOKEN)
        assert TOKEN not in redact(filled), path


def test_json_lines_carry_the_fields_and_no_token() -> None:
    import io
    import json

    from orchestrator.observability.logging import configure_logging, request_id

    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        marker = request_id.set("rid-1")
        logging.getLogger("uvicorn.error").info("GET %s", f"/unsubscribe/{TOKEN}?token=abc")
        logging.getLogger("orchestrator.x").info("send", extra={"send_id": 7})
        request_id.reset(marker)
        logging.getLogger("dramatiq.worker").warning("outside a request")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "GET /unsubscribe/[redacted]?token=[redacted]"
    assert lines[0]["logger"] == "uvicorn.error" and lines[0]["request_id"] == "rid-1"
    assert lines[1]["send_id"] == 7
    assert "request_id" not in lines[2] and lines[2]["level"] == "WARNING"
