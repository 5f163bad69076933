"""HMAC-SHA256 request signatures for hooks: ``v1=<hex of HMAC(secret, "<ts>.<raw body>")>``.

The timestamp is signed with the body, so a captured request cannot be replayed after the
tolerance; several ``v1=`` values separated by commas let a sender rotate secrets.
"""

from __future__ import annotations

import hashlib
import hmac

from orchestrator.errors import StepmailError


class InvalidSignature(StepmailError):
    """Raised when a hook's signature is missing, malformed, wrong or outside the tolerance."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header value a sender puts in ``X-Stepmail-Signature``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance: int,
) -> None:
    """Raise InvalidSignature unless one ``v1`` signature matches and the timestamp is fresh.

    An empty secret refuses everything: anyone can compute a signature with an empty key.
    """
    if not secret.strip():
        raise InvalidSignature("no signing secret is configured; every request is refused")
    if not timestamp_header or not signature_header:
        raise InvalidSignature("missing X-Stepmail-Timestamp or X-Stepmail-Signature header")
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        raise InvalidSignature("X-Stepmail-Timestamp must be unix seconds") from None
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("X-Stepmail-Timestamp is outside the allowed window")
    expected = sign(secret, timestamp_header, body)
    candidates = [part.strip() for part in signature_header.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match")
