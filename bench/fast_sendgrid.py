"""A minimal SendGrid stand-in for throughput runs: answers ``202`` to every authorised
``POST /v3/mail/send`` over keep-alive HTTP/1.1, and validates nothing else.

The tests' ``FakeSendGrid`` checks each body against the OpenAPI description, but its
thread-per-connection ``http.server`` costs about 1.2 ms of CPU a request on a 2-core box,
more than half a core at the 1,000 mails/s target: the fake would be measured, not
Stepmail. This one is a single asyncio protocol (tens of microseconds a request). Use
``--validating-fake`` on the bench when the payloads themselves need checking.

``latency`` (seconds) holds each answer back that long, as the real API's round trip does
(tens to hundreds of milliseconds from most places): with it, a run measures how many sends
the workers keep in flight rather than their CPU. Answers on one connection keep their order.

It runs as a child process and speaks the bench's pipe protocol: it sends its URL, then
answers ``"stats"`` with ``(accepted, invalid, connections)`` until ``"stop"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from multiprocessing.connection import Connection

SEND_LINE = b"POST /v3/mail/send "


@dataclass
class Tally:
    """Counts the bench polls; one event loop thread updates it, so no lock."""

    api_key: str
    accepted: int = 0
    invalid: int = 0
    connections: int = 0


class SendProtocol(asyncio.Protocol):
    """One client connection: split the byte stream into requests, answer each in order."""

    def __init__(self, tally: Tally, ids: itertools.count[int], latency: float = 0.0) -> None:
        self.tally = tally
        self.ids = ids
        self.latency = latency
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.tally.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self._next_request()) is not None:
            assert self.transport is not None
            reply = self._reply(request)
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self._write, reply)
            else:
                self.transport.write(reply)

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)

    def _next_request(self) -> bytes | None:
        """The head of the next complete request (its body consumed), or None to wait."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end])
        total = end + 4 + content_length(head)
        if len(self.buffer) < total:
            return None
        del self.buffer[:total]
        return head

    def _reply(self, head: bytes) -> bytes:
        authorised = f"authorization: bearer {self.tally.api_key}".lower().encode()
        if head.startswith(SEND_LINE) and authorised in head.lower():
            self.tally.accepted += 1
            message_id = f"bench-{next(self.ids)}"
            return (
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
                b"X-Message-Id: " + message_id.encode() + b"\r\n\r\n"
            )
        self.tally.invalid += 1
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"


def content_length(head: bytes) -> int:
    """The body length a request announced; httpx always sends it for a JSON body."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def serve(conn: Connection, api_key: str, latency: float = 0.0) -> None:
    """Child-process entry point (see the module docstring for the pipe protocol)."""
    asyncio.run(_serve(conn, api_key, latency))


async def _serve(conn: Connection, api_key: str, latency: float) -> None:
    loop = asyncio.get_running_loop()
    tally, ids = Tally(api_key), itertools.count(1)
    server = await loop.create_server(
        lambda: SendProtocol(tally, ids, latency), "127.0.0.1", 0, backlog=512
    )
    host, port = server.sockets[0].getsockname()[:2]
    conn.send(f"http://{host}:{port}")
    stopped = loop.create_future()
    loop.add_reader(conn.fileno(), _answer, conn, tally, stopped)
    await stopped
    loop.remove_reader(conn.fileno())
    server.close()
    with contextlib.suppress(OSError):  # a parent that died no longer waits for it
        conn.send(None)


def _answer(conn: Connection, tally: Tally, stopped: asyncio.Future[None]) -> None:
    """One request from the parent. A closed pipe (the parent died, e.g. killed) stops the
    server too: the reader would otherwise fire again at once, forever, and keep a core
    busy raising EOFError (bench/README, "Session 23")."""
    try:
        asked = conn.recv()
    except (EOFError, OSError):
        asked = "stop"
    if asked == "stop":
        if not stopped.done():
            stopped.set_result(None)
    else:
        conn.send((tally.accepted, tally.invalid, tally.connections))
