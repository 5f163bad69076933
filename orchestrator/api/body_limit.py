"""Request bodies are refused with 413 while they stream in, never read whole first.

A pure ASGI middleware: a ``Content-Length`` over the route's limit is answered at once,
before a byte of the body is read; a body without one (chunked) or longer than it claimed is
counted chunk by chunk as the application reads it, and reading stops with 413 as soon as
the count passes the limit. So a request costs at most its limit plus one chunk of memory,
whatever it sends. Limits are per route: batches (``POST /v1/events``, SendGrid's event
webhook) get ``STEPMAIL_MAX_BATCH_BODY_BYTES``, everything else ``STEPMAIL_MAX_BODY_BYTES``.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.settings import Settings

BATCH_ROUTES = frozenset({("POST", "/v1/events"), ("POST", "/hooks/sendgrid")})


class BodyTooLarge(HTTPException):
    """Raised (from ``receive``) when a request body passes its route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


def route_limits(settings: Settings) -> Mapping[tuple[str, str], int]:
    """The routes whose limit is not the default one."""
    return dict.fromkeys(BATCH_ROUTES, settings.max_batch_body_bytes)


class BodyLimit:
    """Caps every HTTP request body at its route's limit (see the module docstring)."""

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[tuple[str, str], int]) -> None:
        self.app, self.default, self.limits = app, default, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get((scope["method"], scope["path"].rstrip("/")), self.default)
        declared = content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:  # normally answered by the exception handler; here if it was not
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None
            return int(text) if len(text) <= 18 else 10**18  # int() refuses 4,300 digits
    return None


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": BodyTooLarge(limit).detail}, status_code=413)
