"""Transports that behave as a test scripts them, and the row a one-step test watches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from orchestrator.db.models import ScheduledSend
from orchestrator.db.tables import scheduled_sends
from orchestrator.runtime import Runtime
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail


class ScriptedTransport:
    """A transport that fails as told, then accepts; counts what it accepted."""

    name = "scripted"
    idempotent = False

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.sent: list[OutgoingMail] = []

    def send(self, mail: OutgoingMail) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)
        return SendResult(provider_message_id=f"msg-{len(self.sent)}")

    def close(self) -> None:
        return None


def welcome_row(runtime: Runtime) -> Any:
    with runtime.engine.connect() as connection:
        row = connection.execute(
            select(ScheduledSend).where(scheduled_sends.c.step_id == "welcome")
        ).one()
        return row
