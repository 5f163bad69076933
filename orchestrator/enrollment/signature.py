"""HMAC-SHA256 request signatures for hooks: ``v1=<hex of HMAC(secret, "<ts>.<raw body>")>``.

The timestamp is signed with the body, so a captured request cannot be replayed after the
tolerance; several ``v1=`` values separated by commas let a sender rotate secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from orchestrator.errors import InvalidSignature

_V1 = re.compile(r"v1=[0-9a-f]{64}")


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
    check_headers(secret, timestamp_header, signature_header, now, tolerance)
    assert timestamp_header is not None and signature_header is not None  # checked above
    expected = sign(secret, timestamp_header, body).encode()
    # Compare bytes: a non-ASCII character is then a mismatch, not a TypeError from
    # compare_digest.
    candidates = [part.strip().encode("utf-8", "replace") for part in signature_header.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match")


def check_headers(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    now: float,
    tolerance: int,
) -> None:
    """What can be refused from the headers alone, before the body is read: no secret, a
    missing header, a stale timestamp, or no value of the form ``v1=<64 hex digits>``."""
    if not secret.strip():
        raise InvalidSignature("no signing secret is configured; every request is refused")
    if not timestamp_header or not signature_header:
        raise InvalidSignature("missing X-Stepmail-Timestamp or X-Stepmail-Signature header")
    fresh_timestamp(timestamp_header, "X-Stepmail-Timestamp", now, tolerance)
    if not any(_V1.fullmatch(part.strip()) for part in signature_header.split(",")):
        raise InvalidSignature("X-Stepmail-Signature holds no v1=<hex HMAC-SHA256> value")


def fresh_timestamp(header: str, name: str, now: float, tolerance: int) -> int:
    """The header's unix seconds if they are within ``tolerance`` of ``now``. At most 12
    ASCII digits: ``int()`` takes any Unicode digit and any length, and a 309-digit number
    overflows the float comparison."""
    text = header.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise InvalidSignature(f"{name} must be unix seconds")
    timestamp = int(text)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature(f"{name} is outside the allowed window")
    return timestamp
