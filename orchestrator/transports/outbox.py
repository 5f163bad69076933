"""The embedded default: each mail becomes one ``.eml`` file in the outbox folder."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from orchestrator.mail import OutgoingMail
from orchestrator.transports.base import SendResult


class OutboxTransport:
    """Writes ``<idempotency key>.eml`` atomically; writing the same key twice keeps one file."""

    name = "outbox"
    idempotent = True

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, mail: OutgoingMail) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", mail.idempotency_key)
        return self.directory / f"{safe}.eml"

    def send(self, mail: OutgoingMail) -> SendResult:
        target = self.path_for(mail)
        data = mail.as_bytes()
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return SendResult(provider_message_id=target.name)

    def close(self) -> None:
        return None
