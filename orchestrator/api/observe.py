"""Every request gets an id, one access-log line and its metrics.

The id is the caller's ``X-Request-Id`` when it is sane (1 to 128 characters of letters,
digits and ``._:-``), else a new one; it is echoed in the response and put on every log line
written while the request runs (:data:`orchestrator.observability.logging.request_id`). The
access line names the method, the path with capability tokens redacted, the status and the
duration; the metrics use the route's template (``/unsubscribe/{token}``), never the raw path,
so a scanner cannot grow the label set. This is the outermost middleware: a 401 from the
bearer gate or a 413 from the body limit are logged and counted too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.observability.logging import request_id
from orchestrator.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("orchestrator.api.access")

HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED = "unmatched"


def choose_request_id(given: bytes | None) -> str:
    """The caller's id if it is safe to log and echo, else a fresh one."""
    if given is not None and _SANE_ID.fullmatch(given):
        return given.decode("ascii")
    return uuid.uuid4().hex


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), None)
        rid = choose_request_id(given)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before starting a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER],
                    (HEADER, rid.encode("ascii")),
                ]
            await send(message)

        root_path = scope.get("root_path", "")
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed, root_path)
            request_id.reset(token)

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float, root_path: str) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = _route_template(scope, root_path)
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route).observe(elapsed)
        access_log.info("%s %s %d %.1fms", method, _logged_path(scope), status, elapsed * 1000)


def _route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template, with the prefix of the mount it is in (the console's
    routes are ``/console/tasks/{task_id}``, not a bare ``/tasks/{task_id}``)."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return UNMATCHED
    mounted = str(scope.get("root_path", ""))
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + str(template)


def _logged_path(scope: Scope) -> str:
    """The path as sent (percent-encoding kept, so no control character reaches the log) with
    its query, capped; the log handler redacts tokens in it."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8", "backslashreplace")
    query = scope.get("query_string", b"")
    text = (raw + (b"?" + query if query else b"")).decode("latin-1")
    return str(text) if len(text) <= 512 else str(text[:512]) + "…"


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
