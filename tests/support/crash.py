"""A worker killed in the middle of a transport call, in-process: the transport raises an
exception no code path catches, so nothing after the call runs, as with ``kill -9``."""

from __future__ import annotations

from orchestrator.transports.base import SendResult, Transport
from orchestrator.transports.mail import OutgoingMail


class WorkerKilled(BaseException):
    """Raised where the worker process would have died."""


class DiesMidCall:
    """Passes mails to ``inner`` and dies during call number ``die_at`` (1-based): after the
    mail reached ``inner`` when ``mail_left``, else before."""

    def __init__(self, inner: Transport, die_at: int, *, mail_left: bool = True) -> None:
        self.inner, self.die_at, self.mail_left = inner, die_at, mail_left
        self.name, self.idempotent = inner.name, inner.idempotent
        self.reconcilable = bool(getattr(inner, "reconcilable", False))
        self.calls = 0

    def send(self, mail: OutgoingMail) -> SendResult:
        self.calls += 1
        if self.calls != self.die_at:
            return self.inner.send(mail)
        if self.mail_left:
            self.inner.send(mail)
        raise WorkerKilled

    def close(self) -> None:
        self.inner.close()
