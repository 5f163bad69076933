"""SendGrid's signed event webhook: ECDSA (P-256, SHA-256) over ``<timestamp><raw body>``.

SendGrid signs each request with its private key and sends the base64 DER signature and the
timestamp in ``X-Twilio-Email-Event-Webhook-Signature`` and ``-Timestamp``; its settings page
shows the public key as base64 DER (SubjectPublicKeyInfo). We verify with ``cryptography``
directly on the raw bytes, the same library SendGrid's own ``EventWebhook`` helper uses, and
add what the helper lacks: a freshness check on the timestamp and clean errors on bad input.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from orchestrator.enrollment.signature import fresh_timestamp
from orchestrator.errors import ConfigurationError, InvalidSignature

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_KEY_SETTING = "STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY"
MIN_DER_SIGNATURE, MAX_DER_SIGNATURE = 8, 72  # SEQUENCE of two INTEGERs of up to 33 bytes


@lru_cache(maxsize=4)
def load_public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form (a PEM block is accepted too)."""
    text = encoded.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(f"{_KEY_SETTING} is not a base64 public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"{_KEY_SETTING} must be an ECDSA P-256 public key")
    return key


def check_event_headers(
    public_key: str,
    signature_header: str | None,
    timestamp_header: str | None,
    *,
    now: float,
    tolerance: int,
) -> bytes:
    """What can be refused from the headers alone, before the body is read: an unusable key,
    a missing header, a stale timestamp, a signature that is not base64 DER of a plausible
    length. Returns the decoded signature."""
    load_public_key(public_key)
    if not signature_header or not timestamp_header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    fresh_timestamp(timestamp_header, TIMESTAMP_HEADER, now, tolerance)
    if not signature_header.isascii():
        raise InvalidSignature(f"{SIGNATURE_HEADER} is not base64")
    try:
        signature = base64.b64decode(signature_header, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature(f"{SIGNATURE_HEADER} is not base64") from None
    if not (MIN_DER_SIGNATURE <= len(signature) <= MAX_DER_SIGNATURE) or signature[0] != 0x30:
        raise InvalidSignature(f"{SIGNATURE_HEADER} is not a DER ECDSA signature")
    return signature


def verify_event_signature(
    public_key: str,
    signature_header: str | None,
    timestamp_header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: int,
) -> None:
    """Raise InvalidSignature unless the signature matches and the timestamp is fresh;
    ConfigurationError if the configured key itself is unusable."""
    key = load_public_key(public_key)
    signature = check_event_headers(
        public_key, signature_header, timestamp_header, now=now, tolerance=tolerance
    )
    assert timestamp_header is not None  # checked above
    try:
        key.verify(signature, timestamp_header.encode() + body, ec.ECDSA(hashes.SHA256()))
    except CryptoInvalidSignature:
        raise InvalidSignature("signature does not match") from None
