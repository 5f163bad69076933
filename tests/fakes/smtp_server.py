"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with an ephemeral port, recording
what it accepts and able to refuse or stall as scripted."""

from __future__ import annotations

import asyncio
import email
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One envelope as the server saw it, with the connection it came on."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any
    data: bytes = b""  # the message exactly as it came in DATA


@dataclass
class RecordingHandler:
    """Stores envelopes; ``rcpt_reply``/``data_reply`` script a refusal, ``data_delay`` a stall."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    data_delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(envelope.mail_from, envelope.rcpt_tos, message, session.peer, envelope.content)
        )
        return "250 Message accepted for delivery"


class EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: it learns the real port before its start-up self-check."""

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def start_server(handler: RecordingHandler, port: int = 0) -> Controller:
    controller = EphemeralController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller
