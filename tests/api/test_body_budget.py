"""Bodies read before their sender is known share one budget (probe M1); a client that goes
away mid-body ends its request quietly (probe L1).

The probe held 300 unsigned 4 MiB bodies open on ``/hooks/sendgrid`` and the API grew from
151 MB to 1.4 GB, never given back. Here many requests are held open at once, straight
through ASGI, and what the application pulled is counted: beyond the budget a request is
answered 503 before a byte of its body is read, and the budget comes back when they end."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI

from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from tests.fakes.sendgrid_events import SIGNATURE
from tests.support.environment import START
from tests.support.hostile import AUTH, JSON, SIGNER, hostile_runtime
from tests.support.signups import signed_headers

KIB = 1024
BUDGET = 1024 * KIB
BODY = 60 * KIB  # under the signup hook's 64 KiB limit
FITS = BUDGET // BODY  # 17 held bodies fit, the 18th does not
FORGED_SIGNUP = signed_headers(b"another body", timestamp=int(START.timestamp()))
FORGED_EVENTS = SIGNER.headers(b"another body", int(START.timestamp()))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("budget")
    url = f"sqlite:///{tmp / 'stepmail.db'}"
    upgrade(url)
    runtime = hostile_runtime(
        tmp,
        url,
        preauth_body_budget=BUDGET,
        max_batch_body_bytes=BUDGET,
        http_body_timeout=0.5,
    )
    yield create_app(runtime)
    runtime.close()


class HeldBody:
    """A client that sends its first chunk and then nothing until ``release`` (then it goes
    away); counts what the application pulled."""

    def __init__(self, release: asyncio.Event, first: int = 1024) -> None:
        self.release, self.first, self.pulled = release, first, 0

    async def receive(self) -> dict[str, Any]:
        if self.pulled == 0:
            self.pulled = self.first
            return {"type": "http.request", "body": b"x" * self.first, "more_body": True}
        await self.release.wait()
        return {"type": "http.disconnect"}


async def whole_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{" + b" " * (BODY - 2) + b"}", "more_body": False}


class Answer:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


SIGNUP = {**JSON, **FORGED_SIGNUP, "Content-Length": str(BODY)}


async def hold_many(app: FastAPI, count: int, headers: dict[str, str] = SIGNUP) -> list[Any]:
    """``count`` requests held mid-body, then one more; the held ones then go away."""
    release = asyncio.Event()
    held = [HeldBody(release) for _ in range(count)]
    answers = [Answer() for _ in held]
    tasks = [
        asyncio.create_task(app(scope("POST", "/hooks/signup", headers), b.receive, a.send))
        for b, a in zip(held, answers, strict=True)
    ]
    for _ in range(2_000):  # let every one of them reach its first read, however deep the stack
        if all(b.pulled or t.done() for b, t in zip(held, tasks, strict=True)):
            break
        await asyncio.sleep(0)
    extra_body, extra = HeldBody(release), Answer()
    await app(scope("POST", "/hooks/signup", headers), extra_body.receive, extra.send)
    release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    after = Answer()
    await app(scope("POST", "/hooks/signup", headers), whole_body, after.send)
    return [held, answers, outcomes, extra_body, extra, after]


def test_beyond_the_budget_a_request_is_refused_before_its_body_is_read(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, answers, outcomes, extra_body, extra, after = asyncio.run(hold_many(app, FITS))

    assert extra.status == 503
    assert extra.headers["retry-after"] == "5"
    assert extra.headers["connection"] == "close"  # the unread body is never read
    assert extra_body.pulled == 0
    assert json.loads(extra.body)["detail"].startswith("too many request bodies")
    # L1: the held clients went away mid-body: no exception, no error, no traceback
    assert outcomes == [None] * FITS
    assert [a.status for a in answers] == [None] * FITS  # nobody left to answer
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    # and the budget came back: the next one is read (then refused by its signature)
    assert after.status == 401
    assert "signature does not match" in after.body.decode()


def test_under_the_budget_every_request_is_read(app: FastAPI) -> None:
    *_, extra_body, extra, _after = asyncio.run(hold_many(app, FITS - 1))
    assert extra.status != 503
    assert extra_body.pulled > 0


def test_an_unsigned_hook_request_costs_no_body(app: FastAPI) -> None:
    """The hooks refuse what their headers show (no signature, a stale timestamp, a value
    that cannot be a signature) before reading a byte."""

    async def one(headers: dict[str, str], path: str) -> tuple[Answer, HeldBody]:
        body, answer = HeldBody(asyncio.Event()), Answer()
        await app(scope("POST", path, headers), body.receive, answer.send)
        return answer, body

    stale = signed_headers(b"x", timestamp=int(START.timestamp()) - 3600)
    cases = [
        ("/hooks/signup", {**JSON, "Content-Length": str(BODY)}),
        ("/hooks/signup", {**JSON, **stale, "Content-Length": str(BODY)}),
        ("/hooks/signup", {**JSON, **FORGED_SIGNUP, "X-Stepmail-Signature": "v1=zz"}),
        ("/hooks/sendgrid", {**JSON, "Content-Length": str(BODY)}),
        ("/hooks/sendgrid", {**JSON, **FORGED_EVENTS, SIGNATURE: "QUJD"}),
    ]
    for path, headers in cases:
        answer, body = asyncio.run(one(headers, path))
        assert answer.status == 401, (path, headers, answer.body)
        assert body.pulled == 0, (path, headers)


def test_a_body_that_does_not_arrive_in_time_is_answered_408(app: FastAPI) -> None:
    """A client cannot hold a part of the budget by sending slowly."""

    async def slow() -> tuple[Answer, HeldBody]:
        body, answer = HeldBody(asyncio.Event()), Answer()  # never released
        await app(scope("POST", "/hooks/signup", SIGNUP), body.receive, answer.send)
        return answer, body

    answer, _ = asyncio.run(slow())
    assert answer.status == 408
    assert answer.headers["connection"] == "close"


def test_authenticated_routes_are_outside_the_budget(app: FastAPI) -> None:
    """/v1's bearer token is checked from the headers before any body is read; a wrong token
    costs nothing and a right one is a known client."""

    async def held_v1() -> Answer:
        release = asyncio.Event()
        headers = {**JSON, **AUTH, "Content-Length": str(BODY)}
        bodies = [HeldBody(release) for _ in range(FITS + 3)]
        answers = [Answer() for _ in bodies]
        tasks = [
            asyncio.create_task(app(scope("POST", "/v1/events", headers), b.receive, a.send))
            for b, a in zip(bodies, answers, strict=True)
        ]
        for _ in range(50):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        return answers[-1]

    assert asyncio.run(held_v1()).status != 503


def test_the_budget_never_goes_negative_or_leaks(app: FastAPI) -> None:
    """Refused, cut off, slow and finished requests all give back what they took."""
    from orchestrator.api.body_budget import BodyBudget

    budget = _find(app, BodyBudget).budget
    asyncio.run(hold_many(app, FITS + 5))
    assert budget.held == 0


def _find(app: FastAPI, kind: type[Any]) -> Any:
    layer = app.middleware_stack
    if layer is None:
        app.middleware_stack = app.build_middleware_stack()
        layer = app.middleware_stack
    while layer is not None and not isinstance(layer, kind):
        layer = getattr(layer, "app", None)
    assert layer is not None
    return layer


CONSOLE_FORM = {
    "Host": "stepmail.example.com",
    "Origin": "https://stepmail.example.com",
    "Content-Type": "application/x-www-form-urlencoded",
    "Transfer-Encoding": "chunked",
}


def test_a_console_form_cut_off_is_answered_as_the_api_would(app: FastAPI) -> None:
    """The console's own middleware once read bodies in a task group, which wrapped these
    4xx in an ``ExceptionGroup`` past every handler: each was a 500 with a traceback. Too
    long (chunked, no length to refuse it by): 413; too slow: 408; gone: nobody to answer."""

    async def sent(chunks: list[bytes], then: str) -> Answer:
        left = list(chunks)

        async def receive() -> dict[str, Any]:
            if left:
                return {"type": "http.request", "body": left.pop(0), "more_body": True}
            if then == "wait":
                await asyncio.Event().wait()  # never set: the body's time runs out
            return {"type": "http.disconnect"}

        answer = Answer()
        request = {**scope("POST", "/console/login", CONSOLE_FORM), "scheme": "https"}
        await app(request, receive, answer.send)
        return answer

    too_long = asyncio.run(sent([b"note="] + [b"x" * 65_536] * 3, "disconnect"))
    too_slow = asyncio.run(sent([b"note=x"], "wait"))
    gone = asyncio.run(sent([b"note=x"], "disconnect"))

    assert too_long.status == 413 and b"<!doctype html>" in too_long.body
    assert "content-security-policy" in too_long.headers  # the console's own headers
    assert too_slow.status == 408
    assert gone.status in (None, 400)
