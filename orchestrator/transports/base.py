"""The one small interface every transport implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.transports.mail import OutgoingMail


@dataclass(frozen=True)
class SendResult:
    """What the transport learnt: the provider's id for the mail, if it gave one."""

    provider_message_id: str | None = None


class Transport(Protocol):
    """Hands a mail to someone who delivers it.

    ``send`` returns on acceptance and raises a ``DeliveryError`` subclass otherwise:
    ``TransientDeliveryError`` (retry later), ``PermanentDeliveryError`` (never retry) or
    ``UnknownDeliveryOutcome`` (the request may have been taken; do not resend blindly).
    ``idempotent`` is True when sending the same ``idempotency_key`` twice delivers once,
    which makes resending after a crash safe.
    """

    name: str
    idempotent: bool

    def send(self, mail: OutgoingMail) -> SendResult: ...

    def close(self) -> None: ...


def is_reconcilable(transport: Transport) -> bool:
    """True when a provider's event webhook reports what happened to each mail, so an unknown
    outcome can wait for that event instead of staying unknown forever.

    A transport opts in with a class attribute ``reconcilable = True``; it is read with a
    default so transports (and test doubles) that predate the attribute need no change.
    """
    return bool(getattr(transport, "reconcilable", False))
