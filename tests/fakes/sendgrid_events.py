"""SendGrid's side of the event webhook, for tests and benchmarks: a P-256 key pair made on
the spot, events shaped like SendGrid's (custom_args merged at the top level, ``sg_message_id``
= ``X-Message-Id`` + a filter suffix), and signed requests.

    signer = EventSigner()
    settings = make_settings(..., sendgrid_webhook_public_key=signer.public_key)
    body = json.dumps([sendgrid_event(mail, "delivered")]).encode()
    client.post("/hooks/sendgrid", content=body, headers=signer.headers(body, timestamp))
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.sendgrid_server import ReceivedMail

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

_ids = itertools.count(1)


class EventSigner:
    """Signs webhook bodies as SendGrid does: base64 DER ECDSA over ``timestamp + body``."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """Base64 DER SubjectPublicKeyInfo: the form SendGrid's settings page shows."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int | str) -> str:
        signature = self._key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, timestamp: int | str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            SIGNATURE: self.sign(body, timestamp),
            TIMESTAMP: str(timestamp),
        }


def sendgrid_event(
    mail: ReceivedMail, event: str, timestamp: int = 0, **fields: Any
) -> dict[str, Any]:
    """An event SendGrid would post about ``mail`` (one the fake accepted)."""
    body = mail.body
    recipient = body["personalizations"][0]["to"][0]["email"]
    record: dict[str, Any] = {
        "email": recipient,
        "timestamp": timestamp,
        "event": event,
        "smtp-id": body.get("headers", {}).get("Message-ID", ""),
        "sg_event_id": f"evt-{next(_ids)}-{event}",
        "sg_message_id": f"{mail.message_id}.recvd-7b9cbd9b7-x2k9z-1-6543A1B2-3.0",
        "category": body.get("categories", []),
        **body.get("custom_args", {}),
    }
    record.update(fields)
    return record
