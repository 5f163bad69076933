"""A moment given on the command line (``--since``, ``--at``): ISO 8601, bounded as the API's
are (:func:`orchestrator.guards.bounds.bounded_moment`), or one line naming the option."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.errors import InvalidInput
from orchestrator.guards.bounds import bounded_moment


def moment_option(
    flag: str,
    text: str,
    *,
    naive_is_utc: bool = False,
    expected: str = "an ISO 8601 time",
    typed: str | None = None,
) -> datetime:
    """``text`` as an aware moment between 1970 and 3000 (a moment near year 1 or 9999
    overflowed once a window or a zone was applied to it: a traceback, not a message).
    ``naive_is_utc``: a time without an offset is read as UTC, else it is refused;
    ``expected``: what the message says the option takes; ``typed``: what the user typed,
    quoted by the message, when ``text`` was made from it (a date made a midnight)."""
    shown = (text if typed is None else typed)[:40]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{flag}: not {expected}: {shown!r}") from None
    if naive_is_utc and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        bounded = bounded_moment(moment)
    except ValueError as exc:
        raise InvalidInput(f"{flag} {shown!r}: {exc}") from None
    assert bounded is not None
    return bounded
