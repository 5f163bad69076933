"""Signatures of the signup hook: ``X-Stepmail-Signature: v1=<hex HMAC-SHA256 of
"<timestamp>.<raw body>">`` with ``X-Stepmail-Timestamp: <unix seconds>``. The server refuses
a timestamp older than five minutes, so a retried call is signed again."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The value of ``X-Stepmail-Signature`` for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "X-Stepmail-Timestamp": str(timestamp),
        "X-Stepmail-Signature": sign(secret, timestamp, body),
    }
