"""The client's retries, on a scripted transport (unit tests): what is retried, how long it
waits, and what it raises. tests/client/test_api.py proves the same against the real API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from stepmail_client import (
    RetryPolicy,
    StepmailApiError,
    StepmailClient,
    StepmailClientError,
    StepmailConnectionError,
)
from stepmail_client.retry import retry_after_seconds

from orchestrator.enrollment.signature import verify

Answer = httpx.Response | Exception


class Script:
    """Answers requests in order from a list; records each request and each wait."""

    def __init__(self, *answers: Answer) -> None:
        self.answers: Iterator[Answer] = iter(answers)
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, draw: float = 0.0, **kwargs: object) -> StepmailClient:
        http = httpx.Client(transport=httpx.MockTransport(self.handle))
        return StepmailClient(
            "http://stepmail.test",
            "key",
            http=http,
            sleep=self.waits.append,
            draw=lambda: draw,
            **kwargs,  # type: ignore[arg-type]
        )


def ok(body: object = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"ok": True})


def status(code: int, **headers: str) -> httpx.Response:
    return httpx.Response(code, json={"detail": f"status {code}"}, headers=headers)


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_retried_with_growing_waits(code: int) -> None:
    script = Script(status(code), status(code), ok())
    assert script.client().close_task(7) == {"ok": True}
    assert len(script.requests) == 3
    assert script.waits == [0.5, 1.0]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 422, 501])
def test_answers_a_retry_would_not_change_are_raised_at_once(code: int) -> None:
    script = Script(status(code))
    with pytest.raises(StepmailApiError) as raised:
        script.client().close_task(7)
    assert raised.value.status == code
    assert raised.value.detail == f"status {code}"
    assert len(script.requests) == 1 and script.waits == []


def test_no_answer_at_all_is_retried_then_raised_as_a_connection_error() -> None:
    refused = httpx.ConnectError("connection refused")
    script = Script(refused, httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), refused)
    with pytest.raises(StepmailConnectionError) as raised:
        script.client().close_task(7)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(script.requests) == 4 and script.waits == [0.5, 1.0, 2.0]


def test_the_last_server_error_is_raised_when_the_attempts_run_out() -> None:
    script = Script(status(503), status(503))
    with pytest.raises(StepmailApiError) as raised:
        script.client(retry=RetryPolicy(attempts=2)).close_task(7)
    assert raised.value.status == 503
    assert len(script.requests) == 2 and script.waits == [0.5]


def test_jitter_stretches_a_wait_by_up_to_half_never_shortens_it() -> None:
    script = Script(status(503), status(503), ok())
    script.client(draw=0.999).close_task(7)
    assert script.waits == [pytest.approx(0.5 * 1.4995), pytest.approx(1.0 * 1.4995)]
    assert RetryPolicy(backoff=4, max_backoff=5).wait(3, draw=0.0) == 5


def test_retry_after_is_honoured_when_longer_and_a_too_long_one_ends_the_retries() -> None:
    script = Script(status(429, **{"Retry-After": "7"}), ok())
    script.client().close_task(7)
    assert script.waits == [7.0]
    script = Script(status(503, **{"Retry-After": "3600"}))
    with pytest.raises(StepmailApiError):
        script.client().close_task(7)
    assert len(script.requests) == 1 and script.waits == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    for unreadable in (None, "", "soon", "-5", "１２"):
        assert retry_after_seconds(unreadable, now) is None


def test_a_retried_signup_is_signed_again_with_a_fresh_timestamp() -> None:
    script = Script(status(503), ok({"customer_id": 1}, 202))
    moments = iter([1_800_000_000.0, 1_800_000_001.0])
    client = script.client(signup_secret="hook-secret", clock=lambda: next(moments))
    assert client.signup("acct_42", "taro@example.co.jp", "山田 太郎") == {"customer_id": 1}
    first, second = script.requests
    assert first.content == second.content
    assert json.loads(second.content)["name"] == "山田 太郎"
    assert [r.headers["X-Stepmail-Timestamp"] for r in script.requests] == [
        "1800000000",
        "1800000001",
    ]
    for request, now in zip(script.requests, (1_800_000_000, 1_800_000_001), strict=True):
        verify(
            "hook-secret",
            request.headers["X-Stepmail-Timestamp"],
            request.headers["X-Stepmail-Signature"],
            request.content,
            now=now,
            tolerance=300,
        )
        assert "Authorization" not in request.headers


def test_an_event_without_id_carries_its_time_so_a_retry_is_the_same_event() -> None:
    script = Script(status(502), ok({"stored": 1}))
    script.client(clock=lambda: 1_800_000_000.5).track("acct_42", "login")
    bodies = [json.loads(r.content) for r in script.requests]
    assert bodies[0] == bodies[1]
    assert bodies[0]["occurred_at"] == "2027-01-15T08:00:00.500000+00:00"
    assert bodies[0]["properties"] == {}


def test_calls_say_which_credential_they_lack() -> None:
    no_key = StepmailClient("http://stepmail.test", http=httpx.Client())
    with pytest.raises(StepmailClientError, match="api_key"):
        no_key.track("acct_42", "login")
    with pytest.raises(StepmailClientError, match="signup_secret"):
        no_key.signup("acct_42", "taro@example.co.jp", "Taro")


def test_a_retry_policy_refuses_nonsense() -> None:
    bad: list[Callable[[], RetryPolicy]] = [
        lambda: RetryPolicy(attempts=0),
        lambda: RetryPolicy(backoff=-1),
    ]
    for make in bad:
        with pytest.raises(ValueError):
            make()
