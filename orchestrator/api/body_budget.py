"""Bodies read before their sender is known share one budget, and every body a deadline.

The signed hooks must read a whole body before they can check its signature, and the
unsubscribe forms act on a token in the path: whatever such a request sends is held by the
process before anything says who sent it. ``body_limit`` caps each request; this caps them
all together. Every request outside ``/v1`` (whose bearer token is checked from the headers
before any body is read, ``bearer_gate``) takes the bytes it reads from a process-wide
budget (``STEPMAIL_PREAUTH_BODY_BUDGET``) — a declared ``Content-Length`` at its first read,
chunked bodies chunk by chunk — and gives them back when it is answered. A request that
does not fit is answered ``503`` with ``Retry-After`` before its body is read (SendGrid and
signup flows retry), so memory is bounded whatever the number of clients.

Every body must also arrive within ``STEPMAIL_HTTP_BODY_TIMEOUT`` (``408`` after), so a
client cannot hold a part of the budget by sending slowly. A request answered before its
body was read to the end gets ``Connection: close``: the rest of the body is never read.
A client that goes away mid-body ends its request quietly (a debug line, no traceback).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.body_limit import content_length

log = logging.getLogger(__name__)
AUTHENTICATED_FIRST = "/v1"  # bearer_gate answers these from their headers
RETRY_AFTER = "5"  # seconds


class BudgetExhausted(HTTPException):
    """Raised (from ``receive``) when a body does not fit in what is left of the budget.
    An HTTPException, as ``BodyTooLarge``: FastAPI re-raises those from body parsing."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "too many request bodies are being received; retry shortly",
            headers={"Retry-After": RETRY_AFTER},
        )


class BodyTooSlow(HTTPException):
    """Raised (from ``receive``) when a body has not arrived by its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} seconds")


class SharedBudget:
    """Bytes that may be held at once; callers take and give back (one event loop: no lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.held = capacity, 0

    def take(self, amount: int) -> bool:
        if self.held + amount > self.capacity:
            return False
        self.held += amount
        return True

    def give_back(self, amount: int) -> None:
        self.held -= amount


class BodyBudget:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, budget: int, body_timeout: float) -> None:
        self.app, self.budget, self.body_timeout = app, SharedBudget(budget), body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(scope, receive, send, self)
        try:
            await self.app(scope, request.receive, request.send)
        except ClientDisconnect:
            log.debug("client went away during %s %s", scope["method"], scope["path"])
        except (BudgetExhausted, BodyTooSlow) as exc:  # normally answered by the handler
            if request.started:
                raise
            answer = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
            await answer(scope, receive, request.send)
        finally:
            self.budget.give_back(request.taken)


class _Request:
    """One request's reads (counted, timed) and its answer (closing when the body was cut)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, owner: BodyBudget) -> None:
        self._receive, self._send, self._owner = receive, send, owner
        self.budgeted = not _under(scope["path"], AUTHENTICATED_FIRST)
        self.declared = content_length(scope)
        self.deadline = asyncio.get_running_loop().time() + owner.body_timeout
        self.taken, self.read, self.started = 0, 0, False
        self.complete = not self.declared and not _chunked(scope)  # no body at all

    async def receive(self) -> Message:
        if self.complete:  # the body is in: later reads wait for a disconnect, untimed
            return await self._receive()
        if self.budgeted and self.taken == 0 and self.declared:
            self._take(self.declared)  # all or nothing, before a byte is read
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise BodyTooSlow(self._owner.body_timeout) from None
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.budgeted and self.read > self.taken:
                self._take(self.read - self.taken)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if not self.complete:
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await self._send(message)

    def _take(self, amount: int) -> None:
        if not self._owner.budget.take(amount):
            raise BudgetExhausted()
        self.taken += amount


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")
