"""Arguments several commands take, checked before anything reads the database: a bad value
is one line naming the flag (not a driver's error about a NUL byte or a lone surrogate)."""

from __future__ import annotations

from orchestrator.errors import InvalidInput
from orchestrator.guards.mail_headers import unsafe_character

MAX_EXTERNAL_ID = 255  # the customer table's column


def external_id_option(flag: str, value: str) -> str:
    """A customer's external id as typed: 1 to 255 characters of one line of UTF-8 text."""
    if not 1 <= len(value) <= MAX_EXTERNAL_ID:
        raise InvalidInput(f"{flag}: an external id is 1 to {MAX_EXTERNAL_ID} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{flag}: not UTF-8 text") from None
    code = unsafe_character(value)
    if code is not None:
        raise InvalidInput(f"{flag}: one line of text without control characters ({code} found)")
    return value
