"""A local SendGrid Mail Send API for tests and benchmarks.

Every request is checked the way SendGrid would: the bearer key, then the JSON body against
the official OpenAPI description (compiled once by openapi-core, ~0.2 ms a request, so a
benchmark can push well over 1000 requests a second through keep-alive connections).
Valid mails are recorded and answered 202 with an ``X-Message-Id``, unless a script says
otherwise::

    with FakeSendGrid() as sg:
        sg.script(["429", "500", "ok", "hang", "400"])
        transport = SendGridTransport(sg.api_key, sg.url, timeout=0.5)
        ...
        assert sg.invalid == []
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from openapi_core import OpenAPI
from openapi_core.validation.schemas import oas31_schema_validators_factory
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue

SEND_PATH = "/v3/mail/send"
DEFAULT_SPEC = Path(__file__).resolve().parent / "sendgrid_openapi" / "mail_send.openapi.json"
DEFAULT_API_KEY = "SG.fake-test-key"

Behaviour = str  # "ok", "hang", "drop", or an HTTP status from 400 to 599 such as "429"
Script = Callable[[dict[str, Any]], Behaviour]
Reply = tuple[int, dict[str, str], bytes]

# What SendGrid says for each refusal; tests match on these texts.
ERROR_MESSAGES = {
    400: "The from email does not contain a valid address.",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}


@dataclass(frozen=True)
class ReceivedMail:
    """One mail the fake accepted: the JSON body, the request headers (names in lower case,
    as HTTP/2 spells them) and the id the fake gave it."""

    body: dict[str, Any]
    headers: dict[str, str]
    message_id: str


@dataclass(frozen=True)
class RejectedRequest:
    """A request the fake refused as malformed or unauthorised (not a scripted failure)."""

    status: int
    errors: list[dict[str, Any]]
    body: bytes


class FakeSendGrid:
    """Serves ``POST /v3/mail/send`` on 127.0.0.1 with an ephemeral port."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        hang_seconds: float = 3.0,
        spec_path: Path = DEFAULT_SPEC,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.tls = tls  # serve HTTPS (a benchmark's new connections then pay a handshake)
        self._validate = body_validator(str(spec_path))
        self._lock = threading.Lock()
        self._accepted: list[ReceivedMail] = []
        self._invalid: list[RejectedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._connections = 0
        self._request_times: list[float] = []
        self._script: Script | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        if self.tls is not None:  # handshakes run in the handler threads, not in accept()
            server.socket = self.tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; a request still hanging is released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeSendGrid is not started"
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    # -- scripting and records -------------------------------------------------------------

    def script(self, behaviours: Iterable[Behaviour] | Script) -> None:
        """Queue behaviours for the next valid requests ("ok" once the queue is empty),
        or install a callable that picks one per request body."""
        with self._lock:
            if callable(behaviours):
                self._script = behaviours
                return
            queued = list(behaviours)
            for behaviour in queued:
                _check_behaviour(behaviour)
            self._queue.extend(queued)

    @property
    def accepted(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._accepted)

    @property
    def invalid(self) -> list[RejectedRequest]:
        with self._lock:
            return list(self._invalid)

    @property
    def request_times(self) -> list[float]:
        """``time.monotonic()`` when each valid request arrived (scripted failures included):
        what a rate limit is measured on, and how many tries a mail took."""
        with self._lock:
            return list(self._request_times)

    @property
    def connections(self) -> int:
        """How many TCP connections clients opened: 1 for many mails proves keep-alive."""
        with self._lock:
            return self._connections

    def count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    # -- request handling (called from handler threads) ------------------------------------

    def respond(
        self, headers: Mapping[str, str], raw: bytes, arrived: float | None = None
    ) -> Reply | None:
        """The reply for one POST (header names in lower case); None means "hang up".
        ``arrived`` is when its request line was read (``time.monotonic()``)."""
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self._reject(401, [_error(ERROR_MESSAGES[401])], raw)
        if not headers.get("content-type", "").startswith("application/json"):
            return self._reject(400, [_error("Content-Type should be application/json.")], raw)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return self._reject(400, [_error(f"Bad Request: invalid JSON ({exc})")], raw)
        problems = self._validate(body)
        if problems:
            return self._reject(400, problems, raw)
        with self._lock:
            self._request_times.append(time.monotonic() if arrived is None else arrived)
        return self._behave(self._next_behaviour(body), body, headers)

    def _next_behaviour(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            script = self._script
        return _check_behaviour(script(body)) if script is not None else "ok"

    def _behave(
        self, behaviour: Behaviour, body: dict[str, Any], headers: Mapping[str, str]
    ) -> Reply | None:
        if behaviour in ("ok", "hang", "drop"):
            reply = self._accept(body, headers)
            if behaviour == "hang":
                self._stopping.wait(self.hang_seconds)
            return None if behaviour == "drop" else reply
        status = int(behaviour)
        extra = _rate_limit_headers() if status == 429 else {}
        message = ERROR_MESSAGES.get(status, f"scripted error {status}")
        return _json_reply(status, {"errors": [_error(message)]}, extra)

    def _accept(self, body: dict[str, Any], headers: Mapping[str, str]) -> Reply:
        message_id = secrets.token_urlsafe(16)
        with self._lock:
            self._accepted.append(ReceivedMail(body, dict(headers), message_id))
        return 202, {"X-Message-Id": message_id}, b""

    def _reject(self, status: int, errors: list[dict[str, Any]], raw: bytes) -> Reply:
        with self._lock:
            self._invalid.append(RejectedRequest(status, errors, raw))
        return _json_reply(status, {"errors": errors})


@lru_cache(maxsize=4)
def body_validator(spec_path: str) -> Callable[[Any], list[dict[str, Any]]]:
    """Compile the request-body schema of ``POST /v3/mail/send`` once per spec file.

    Returns a function giving SendGrid-style errors (``message`` and ``field``), empty when
    the body is valid. The description is OpenAPI 3.1, hence the 3.1 validator factory.
    """
    spec = OpenAPI.from_file_path(spec_path).spec
    operation = spec / "paths" / SEND_PATH / "post"
    schema = operation / "requestBody" / "content" / "application/json" / "schema"
    validator = oas31_schema_validators_factory.create(spec, schema)

    def validate(body: Any) -> list[dict[str, Any]]:
        try:
            validator.validate(body)
        except InvalidSchemaValue as exc:
            return [_schema_error(err) for err in exc.schema_errors]
        return []

    return validate


class _Server(ThreadingHTTPServer):
    """One thread per connection; quiet about clients that hang up (timeouts do that)."""

    daemon_threads = True
    request_queue_size = 128
    fake: FakeSendGrid

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SendGrid's API does
    disable_nagle_algorithm = True  # headers and body go out without a 40 ms Nagle delay
    server_version = "FakeSendGrid/1.0"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        cast(_Server, self.server).fake.count_connection()

    def do_POST(self) -> None:
        arrived = time.monotonic()  # before body and validation: what a rate limit is about
        length = self.headers.get("Content-Length")
        if length is None:
            self._send(_json_reply(411, {"errors": [_error("Content-Length required")]}))
            return
        raw = self.rfile.read(int(length))
        if self.path.partition("?")[0] != SEND_PATH:
            self._send(_json_reply(404, {"errors": [_error("not found")]}))
            return
        fake = cast(_Server, self.server).fake
        reply = fake.respond({k.lower(): v for k, v in self.headers.items()}, raw, arrived)
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        status, headers, body = reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark's thousands of requests would flood stderr."""


def _check_behaviour(behaviour: Behaviour) -> Behaviour:
    if behaviour in ("ok", "hang", "drop"):
        return behaviour
    if behaviour.isdigit() and 400 <= int(behaviour) <= 599:
        return behaviour
    raise ValueError(f"unknown FakeSendGrid behaviour {behaviour!r}")


def _schema_error(err: Exception) -> dict[str, Any]:
    """A jsonschema error as SendGrid words it: the message and the dotted field path."""
    message = str(getattr(err, "message", err))
    path = getattr(err, "absolute_path", ())  # jsonschema's ValidationError, untyped here
    return _error(message, ".".join(str(p) for p in path) or None)


def _error(message: str, field: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


def _rate_limit_headers() -> dict[str, str]:
    reset = int(time.time()) + 1
    return {
        "Retry-After": "1",
        "X-RateLimit-Limit": "600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
    }


def _json_reply(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Reply:
    return status, dict(headers or {}), json.dumps(payload).encode()
