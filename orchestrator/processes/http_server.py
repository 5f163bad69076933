"""The built-in HTTP server: uvicorn, bounded so that no number of clients can exhaust it.

uvicorn alone keeps a connection whose request headers never finish for ever (its keep-alive
timer starts only after a first response), and its ``limit_concurrency`` answers 503 only to
a complete request: 20,000 half-open connections took every file descriptor, and asyncio then
logged a traceback for each failed ``accept()``. So the protocol here adds, per process:

- a connection cap (``STEPMAIL_HTTP_MAX_CONNECTIONS``): a connection beyond it is answered
  ``503`` and closed at once, so descriptors stay below the process's limit (checked at
  start-up, raised to the hard limit if needed);
- a header deadline (``STEPMAIL_HTTP_HEADER_TIMEOUT``): a connection whose request headers
  are not complete in time is closed, for the first request and every keep-alive one;
- uvicorn's own ``limit_concurrency`` (the same cap) and ``timeout_keep_alive``
  (``STEPMAIL_HTTP_KEEP_ALIVE_TIMEOUT``).

Both of uvicorn's HTTP/1.1 protocols get the same guard: httptools (a C parser, the default
when installed: less CPU per request) and h11 (pure Python; ``STEPMAIL_HTTP_PARSER=h11``).
They are module-level classes reading their bounds from the config (:class:`BoundedConfig`),
so ``stepmail api --workers N`` can hand both to the processes it spawns.

Bodies are bounded in the application (``api/body_limit.py``, ``api/body_budget.py``). The
listening socket is bound here before anything starts, so an address in use is one line
naming ``STEPMAIL_HOST``/``STEPMAIL_PORT``. Behind a reverse proxy that enforces its own
limits these are a second line of defence; without one they are the only one.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Sized
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: h11 serves alone
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

WORKER_HEALTHCHECK_TIMEOUT = 60  # seconds without an answer before an API worker is replaced
SPARE_DESCRIPTORS = 128  # files, the database pool, Redis, the outbox, beyond the connections
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections"
)


class BoundedConfig(uvicorn.Config):
    """uvicorn's config with our two bounds on it, so that the protocols read them from the
    config each connection is made with: a module-level protocol class and this config are
    what a ``stepmail api --workers N`` child gets (pickled by uvicorn's spawn), so its
    bounds are its parent's without any class built at run time."""

    def __init__(
        self, app: Any, *, max_connections: int, header_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.header_timeout = header_timeout


def _bounds(config: uvicorn.Config) -> tuple[int, float]:
    if isinstance(config, BoundedConfig):
        return config.max_connections, config.header_timeout
    raise TypeError("the guarded protocols need a BoundedConfig (server_config)")


def _refuse_beyond_cap(connections: Sized, transport: asyncio.Transport, cap: int) -> bool:
    """Answer 503 and close when this connection is one too many; True when refused."""
    if len(connections) <= cap:
        return False
    log.warning(
        "connection limit reached (STEPMAIL_HTTP_MAX_CONNECTIONS=%d): new connections are refused",
        cap,
    )
    transport.write(_BUSY)
    transport.close()
    return True


class _HeaderDeadline:
    """The header deadline both guarded protocols keep: armed when a connection opens and
    after each response, cancelled once a request's headers are all in; if it fires first,
    the connection is closed. Each protocol says when it is waiting for headers."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timeout: float
    _header_deadline: asyncio.TimerHandle | None = None

    def _awaiting_headers(self) -> bool:
        raise NotImplementedError

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self._header_timeout, self._headers_late)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers() and not self.transport.is_closing():
            log.warning(
                "closed a connection whose request headers took longer than "
                "STEPMAIL_HTTP_HEADER_TIMEOUT (%ss)",
                self._header_timeout,
            )
            self.transport.close()


class GuardedH11Protocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the connection cap and the header deadline."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._cap, self._header_timeout = _bounds(config)
        self._header_deadline = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if not _refuse_beyond_cap(self.connections, self.transport, self._cap):
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # headers complete (or the end)
            self._cancel_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next request on this connection

    def send_400_response(self, msg: str) -> None:
        """A request that turns malformed after its headers (a bad chunk size) while the
        application handles it: uvicorn answers 400 and closes, then the application's
        own answer raised ``LocalProtocolError`` (a traceback per request). Its cycle is
        marked gone first, so that answer goes nowhere, as for a client that left."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.conn.our_state is not h11.SEND_RESPONSE:  # a response already started
            self.transport.close()
            return
        super().send_400_response(msg)

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol (a C parser: less CPU per request than h11) with the
        same cap and header deadline: armed when a connection opens and when a response
        completes while the next request's headers are not all in, cancelled when they are."""

        def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._cap, self._header_timeout = _bounds(config)
            self._header_deadline = None
            self._between_requests = True  # no header of the next request in yet

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not _refuse_beyond_cap(self.connections, self.transport, self._cap):
                self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._between_requests = False
            self._cancel_header_deadline()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._between_requests = True  # the next request's, if any comes
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._between_requests:
                self._arm_header_deadline()  # the next request on this connection

        def send_400_response(self, msg: str) -> None:
            """As :meth:`GuardedH11Protocol.send_400_response`: the request in hand is
            marked gone, and a response already started is cut, never followed by a 400."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
                if cycle.response_started:
                    self.transport.close()
                    return
            super().send_400_response(msg)

        def _awaiting_headers(self) -> bool:
            return self._between_requests


def guarded_protocol(parser: str) -> type[asyncio.Protocol]:
    """The guarded protocol for ``STEPMAIL_HTTP_PARSER``: httptools when asked for or, on
    ``auto``, when installed; else h11."""
    if parser != "h11" and HttpToolsProtocol is not None:
        return GuardedHttpToolsProtocol
    if parser == "httptools":
        raise ConfigurationError("STEPMAIL_HTTP_PARSER=httptools: httptools is not installed")
    return GuardedH11Protocol


def bind(settings: Settings) -> socket.socket:
    """The listening socket, or one line naming the variable at fault."""
    where = f"{settings.host}:{settings.port}"
    try:
        infos = socket.getaddrinfo(
            settings.host or None, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigurationError(f"STEPMAIL_HOST {settings.host!r}: {reason}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"STEPMAIL_HOST/STEPMAIL_PORT: cannot listen on {where}: {exc.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


def ensure_descriptors(settings: Settings) -> None:
    """Enough file descriptors for the connection cap plus the process's own files: raise
    the soft limit towards the hard one if needed, else stop with one line."""
    needed = settings.http_max_connections + settings.db_pool_size + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise ConfigurationError(
        f"STEPMAIL_HTTP_MAX_CONNECTIONS={settings.http_max_connections} needs about {needed} "
        f"file descriptors, and this process may open {hard} (ulimit -n): lower it, or raise "
        "the limit"
    )


def server_config(app: FastAPI | str, settings: Settings, *, workers: int = 1) -> BoundedConfig:
    """uvicorn bounded as above and under our logging: ``log_config=None`` leaves the one
    handler of :func:`~orchestrator.processes.log_hygiene.configure_process_logging` in place
    (uvicorn's records reach it, secrets redacted), and the access line is ours
    (``api/observe.py``: request id, capability tokens redacted, route metrics). ``app`` is
    the application, or with ``workers`` > 1 the import path of the factory each worker
    process builds its own with."""
    return BoundedConfig(
        app,
        max_connections=settings.http_max_connections,
        header_timeout=settings.http_header_timeout,
        http=guarded_protocol(settings.http_parser),
        limit_concurrency=settings.http_max_connections + 1,  # uvicorn refuses at >=
        timeout_keep_alive=settings.http_keep_alive_timeout,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        server_header=False,
        factory=isinstance(app, str),
        workers=workers,
        # The supervisor kills (and replaces) a worker that does not answer its ping in time,
        # dropping the requests in flight. Its 5 s default did that to healthy workers on a
        # loaded 2-core machine while they parsed 1,000-event batches: only a stuck one goes.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
    )


def quiet_uvicorn_access_log() -> None:
    """uvicorn's own access line off (``access_log=False`` does this when the config is made;
    a worker process sets its logging up after that): ours has the request id and redacts."""
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def serve(app: FastAPI, settings: Settings, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` (from :func:`bind`) until interrupted."""
    log.info("serving HTTP on %s:%d", settings.host, settings.port)
    uvicorn.Server(server_config(app, settings)).run(sockets=[sock])


def serve_workers(factory: str, settings: Settings, sock: socket.socket, workers: int) -> None:
    """``workers`` processes on ``sock`` (bound once, here), under uvicorn's supervisor: each
    is a fresh interpreter that builds its application with ``factory`` and serves it with
    the same bounds; one that stops answering the supervisor is replaced."""
    from uvicorn.supervisors import Multiprocess

    log.info("serving HTTP on %s:%d with %d processes", settings.host, settings.port, workers)
    Multiprocess(server_config(factory, settings, workers=workers), sockets=[sock]).run()
