"""What the client raises: one family, so a caller can catch ``StepmailClientError``."""

from __future__ import annotations

import json
from typing import Any


class StepmailClientError(Exception):
    """Base of every error this client raises."""


class StepmailApiError(StepmailClientError):
    """Raised when the API answers with an error (after any retries); carries the status, the
    raw body and, when the body is Stepmail's JSON error, its ``detail``."""

    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body
        self.detail = _detail(body)
        super().__init__(f"Stepmail API error {status}: {body}")


class StepmailConnectionError(StepmailClientError):
    """Raised when no answer came back (connection refused or reset, timeout) after every
    retry; the last transport error is its ``__cause__``."""


def _detail(body: str) -> Any:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("detail") if isinstance(parsed, dict) else None
