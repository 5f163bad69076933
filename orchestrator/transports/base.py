"""The one small interface every transport implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.errors import DeliveryError
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


def in_flight(transport: Transport) -> int:
    """How many mails the transport takes at once (:func:`send_each`): its ``in_flight``
    attribute, else one. Only a transport that posts them side by side has one: handing
    several mails over before sending them one after another would only leave more of them
    in doubt after a crash."""
    return max(1, int(getattr(transport, "in_flight", 1)))


def send_each(
    transport: Transport, mails: Sequence[OutgoingMail]
) -> list[SendResult | DeliveryError]:
    """Each mail's result or transport error, in order: through the transport's
    ``send_many`` when it has one (posting them at the same time, a window of one mail too:
    over the same connections), else one ``send`` after another."""
    send_many = getattr(transport, "send_many", None)
    if send_many is not None:
        results: list[SendResult | DeliveryError] = send_many(mails)
        return results
    each: list[SendResult | DeliveryError] = []
    for mail in mails:
        try:
            each.append(transport.send(mail))
        except DeliveryError as exc:
            each.append(exc)
    return each
