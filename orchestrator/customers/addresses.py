"""A plain mail address as a setting names one (``STEPMAIL_UNSUBSCRIBE_MAILTO``)."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mailto_address(value: str) -> str:
    """The address of ``STEPMAIL_UNSUBSCRIBE_MAILTO`` (``unsub@…`` or ``mailto:unsub@…``)."""
    address = value.strip().removeprefix("mailto:")
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"expected an address like unsubscribe@example.com, got {value!r}")
    return address
