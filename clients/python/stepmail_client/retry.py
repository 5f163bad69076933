"""When a call is tried again, and how long the client waits first.

Retried: 429, 500, 502, 503 and 504, and a request that got no answer (connection refused or
reset, timeout). Never: any other status, which a second try would not change. Every call the
client makes is safe to repeat: signups are idempotent on ``external_id``, events on their
``id`` (or, without one, on name, time and properties: the client fills in ``occurred_at`` so
a retry is the same event), patches and closing a task set a state, suppressing an address
twice keeps one entry.

Waits grow exponentially and are stretched by a random share of themselves (up to half), so
clients that failed together do not come back together; a server's ``Retry-After`` is
honoured when it asks for longer, and one beyond ``max_retry_after`` ends the retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first included; 1 = never retry
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    max_backoff: float = 10.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("waits must not be negative")

    def wait(self, retry: int, draw: float, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0 = the first retry), ``draw`` being
        a random number in [0, 1); None when the server asks for a longer wait than allowed."""
        backoff = min(self.max_backoff, self.backoff * 2.0**retry) * (1 + draw / 2)
        if retry_after is None:
            return backoff
        if retry_after > self.max_retry_after:
            return None
        return max(backoff, retry_after)


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent or
    unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
