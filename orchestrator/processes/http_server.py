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

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

SPARE_DESCRIPTORS = 128  # files, the database pool, Redis, the outbox, beyond the connections
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections"
)


def guarded_protocol(max_connections: int, header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the connection cap and the header deadline."""

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._header_deadline: asyncio.TimerHandle | None = None
            super().connection_made(transport)  # type: ignore[arg-type]
            if len(self.connections) > max_connections:
                log.warning(
                    "connection limit reached (STEPMAIL_HTTP_MAX_CONNECTIONS=%d): "
                    "new connections are refused",
                    max_connections,
                )
                self.transport.write(_BUSY)
                self.transport.close()
                return
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

        def _arm_header_deadline(self) -> None:
            self._cancel_header_deadline()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_late)

        def _cancel_header_deadline(self) -> None:
            deadline = getattr(self, "_header_deadline", None)
            if deadline is not None:
                deadline.cancel()
                self._header_deadline = None

        def _headers_late(self) -> None:
            self._header_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.warning(
                    "closed a connection whose request headers took longer than "
                    "STEPMAIL_HTTP_HEADER_TIMEOUT (%ss)",
                    header_timeout,
                )
                self.transport.close()

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


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """uvicorn bounded as above and under our logging: ``log_config=None`` leaves the one
    handler of :func:`~orchestrator.processes.log_hygiene.configure_process_logging` in place
    (uvicorn's records reach it, secrets redacted), and the access line is ours
    (``api/observe.py``: request id, capability tokens redacted, route metrics)."""
    return uvicorn.Config(
        app,
        http=guarded_protocol(settings.http_max_connections, settings.http_header_timeout),
        limit_concurrency=settings.http_max_connections + 1,  # uvicorn refuses at >=
        timeout_keep_alive=settings.http_keep_alive_timeout,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        server_header=False,
    )


def serve(app: FastAPI, settings: Settings, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` (from :func:`bind`) until interrupted."""
    log.info("serving HTTP on %s:%d", settings.host, settings.port)
    uvicorn.Server(server_config(app, settings)).run(sockets=[sock])
