"""The built-in HTTP server is bounded whatever the clients do (probe M2, L1).

A real ``stepmail api`` with a small connection cap and a short header deadline: half-open
requests (slowloris) are closed, a connection beyond the cap is answered 503 at once and the
service keeps answering; clients that go away mid-body leave no traceback in its log."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from orchestrator.db.migrate import upgrade
from tests.support.environment import ROOT, SECRET, STANDARD_JOURNEYS
from tests.support.processes import free_port

CAP = 20
HEADER_TIMEOUT = 1.0


@contextmanager
def running_api(
    tmp_path: Path, parser: str, workers: int = 1
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    database = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(database)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")}
    env.update(
        STEPMAIL_ENVIRONMENT="development",
        STEPMAIL_DATABASE_URL=database,
        STEPMAIL_PORT=str(port),
        STEPMAIL_JOURNEYS_DIR=str(STANDARD_JOURNEYS),
        STEPMAIL_TEMPLATES_DIR=str(ROOT / "templates" / "mail"),
        STEPMAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        STEPMAIL_SIGNUP_HOOK_SECRET=SECRET,
        STEPMAIL_HTTP_MAX_CONNECTIONS=str(CAP),
        STEPMAIL_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        STEPMAIL_HTTP_PARSER=parser,
    )
    command = [sys.executable, "-c", "from orchestrator.cli import main; main()", "api"]
    command += ["--workers", str(workers)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_until_up(port, server)
        yield port, server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(params=["httptools", "h11"])
def api(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """One ``stepmail api`` process on each of uvicorn's parsers, both guarded."""
    with running_api(tmp_path, request.param) as running:
        yield running


@pytest.fixture
def api_workers(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``stepmail api --workers 2``: spawned processes get the same guarded protocol."""
    with running_api(tmp_path, "auto", workers=2) as running:
        yield running


def wait_until_up(port: int, server: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            pytest.fail(f"stepmail api exited: {server.communicate()[0]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("stepmail api did not start")


def half_open(port: int) -> socket.socket:
    """A request whose headers never finish."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(b"POST /hooks/signup HTTP/1.1\r\nHost: x\r\n")
    return connection


def closed_by_server(connection: socket.socket) -> bytes:
    """What the server sent before it closed the connection (blocks until it does)."""
    received = b""
    while chunk := connection.recv(4096):
        received += chunk
    return received


def log_of(server: subprocess.Popen[str]) -> str:
    server.terminate()
    return server.communicate(timeout=30)[0]


def test_half_open_requests_cannot_take_every_connection(
    api: tuple[int, subprocess.Popen[str]],
) -> None:
    port, server = api
    held = [half_open(port) for _ in range(CAP)]
    try:
        beyond = socket.create_connection(("127.0.0.1", port), timeout=30)
        answer = closed_by_server(beyond)  # at once: the cap is reached
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 5" in answer
        for connection in held:  # after the header deadline, every one is closed
            assert closed_by_server(connection) == b""
    finally:
        for connection in held:
            connection.close()
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    log = log_of(server)
    assert "Traceback" not in log
    assert log.count("connection limit reached") == 1, log  # the rest rate-limited
    assert "STEPMAIL_HTTP_HEADER_TIMEOUT" in log


def test_an_idle_keep_alive_connection_gets_the_header_deadline_too(
    api: tuple[int, subprocess.Popen[str]],
) -> None:
    port, _ = api
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        answer = closed_by_server(connection)
    assert answer.count(b"HTTP/1.1 200 ") == 1


def test_keep_alive_requests_each_get_their_answer_before_the_deadline(
    api: tuple[int, subprocess.Popen[str]],
) -> None:
    """The deadline is for headers that do not come: requests on one connection, each sent
    once the previous answer is in, are all answered (the deadline is re-armed and cancelled
    each time), then the idle connection is closed."""
    port, _ = api
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(3):
            client.request("GET", "/healthz")
            response = client.getresponse()
            response.read()
            assert response.status == 200
        first = client.sock
        assert first is not None and closed_by_server(first) == b""  # the same connection
    finally:
        client.close()


def test_worker_processes_are_bounded_too(
    api_workers: tuple[int, subprocess.Popen[str]],
) -> None:
    """``--workers 2``: each spawned process closes half-open requests at the deadline and
    answers its keep-alive requests (the guarded protocol reached it), with no traceback."""
    port, server = api_workers
    held = [half_open(port) for _ in range(4)]
    try:
        for connection in held:
            assert closed_by_server(connection) == b""
    finally:
        for connection in held:
            connection.close()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        assert closed_by_server(connection).count(b"HTTP/1.1 200 ") == 1
    log = log_of(server)
    assert "Traceback" not in log, log
    # our logging in the workers (a flood of the same warning is logged once per 10 s)
    assert "STEPMAIL_HTTP_HEADER_TIMEOUT" in log, log
    assert "uvicorn.access" not in log, log  # the access line is ours (api/observe.py)


@pytest.mark.parametrize(
    "path", ["/hooks/signup", "/hooks/sendgrid", "/unsubscribe/x/topics", "/v1/events"]
)
def test_a_client_that_leaves_mid_body_writes_no_traceback(
    api: tuple[int, subprocess.Popen[str]], path: str
) -> None:
    """L1: ``Content-Length: 1000``, 6 bytes, close: 70 lines of ClientDisconnect each."""
    from tests.support.signups import signed_headers

    port, server = api
    signed = signed_headers(b"x", timestamp=int(time.time()))
    extra = "".join(f"{k}: {v}\r\n" for k, v in signed.items())
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer nothing\r\n{extra}Content-Length: 1000\r\n\r\n"
                '{"a":1'.encode()
            )
            time.sleep(0.05)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(  # a malformed chunk size
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
            "fffffffffffffffffffffff\r\n".encode()
        )
        closed_by_server(connection)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    log = log_of(server)
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log
