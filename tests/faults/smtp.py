"""The SMTP side of the fault matrix: the aiosmtpd fake, slowed so a kill lands mid-batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.fakes.smtp_server import RecordingHandler, start_server

DATA_DELAY = 0.05  # seconds the server takes over each mail's DATA


@dataclass
class SmtpServer:
    handler: RecordingHandler
    port: int

    def settings(self) -> dict[str, object]:
        return {"mail_transport": "smtp", "smtp_host": "127.0.0.1", "smtp_port": self.port}

    def count(self) -> int:
        return len(self.handler.received)

    def keys(self) -> list[str]:
        """The idempotency key of every mail received, from its Message-ID."""
        return [m.message["Message-ID"].strip("<>").split("@")[0] for m in self.handler.received]


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    handler = RecordingHandler(data_delay=DATA_DELAY)
    controller = start_server(handler)
    try:
        yield SmtpServer(handler, controller.port)
    finally:
        controller.stop()
