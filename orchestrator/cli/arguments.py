"""Arguments several commands take, checked before anything reads the database: a bad value
is one line naming the flag (not a driver's error about a NUL byte or a lone surrogate)."""

from __future__ import annotations

from orchestrator.errors import InvalidInput
from orchestrator.guards.mail_headers import unsafe_character

MAX_EXTERNAL_ID = 255  # the customer table's column


def utf8_text(flag: str, *values: str | None) -> None:
    """Each of ``values`` (a text argument or option; None when not given) is UTF-8: a byte of
    argv that is not (a Latin-1 shell, a pasted file name) arrives as a lone surrogate, which
    the database driver, a file and the terminal all refuse with a UnicodeEncodeError."""
    for value in values:
        if value is None:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{flag}: not UTF-8 text") from None


def external_id_option(flag: str, value: str) -> str:
    """A customer's external id as typed: 1 to 255 characters of one line of UTF-8 text."""
    if not 1 <= len(value) <= MAX_EXTERNAL_ID:
        raise InvalidInput(f"{flag}: an external id is 1 to {MAX_EXTERNAL_ID} characters")
    utf8_text(flag, value)
    code = unsafe_character(value)
    if code is not None:
        raise InvalidInput(f"{flag}: one line of text without control characters ({code} found)")
    return value
