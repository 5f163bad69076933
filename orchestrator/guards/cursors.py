"""Opaque page cursors for every list of the read API: where the next page starts, as the
list's sort key (keyset pagination: a page costs the same however deep it is, and rows added
meanwhile neither repeat nor vanish).

A cursor is the key's values as compact JSON in URL-safe base64, prefixed with the list's name
so one list's cursor is refused by another. It grants nothing (it only says where to start in
a list the caller may read anyway), so it is checked, not signed: a cursor that is not one of
ours, names another list or holds values of the wrong kind or size is a 422 naming
``["query", "cursor"]``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from orchestrator.errors import InvalidRequest
from orchestrator.guards.bounds import MAX_MOMENT, MIN_MOMENT, ROW_ID_MAX

T = TypeVar("T")
MAX_CURSOR = 1024  # characters; ours are shorter
MAX_TEXT = 320  # the longest text a key holds (an email address)
Value = int | str | datetime
Kind = type[int] | type[str] | type[datetime]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, and the cursor of the next page (None: the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(name: str, values: Sequence[Value]) -> str:
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    data = json.dumps([name, *plain], separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_cursor(name: str, cursor: str, kinds: Sequence[Kind]) -> tuple[Value, ...]:
    """The key values of ``cursor`` for list ``name``; InvalidRequest (422) if it is not one."""
    try:
        if len(cursor) > MAX_CURSOR or not cursor.isascii():
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        items = json.loads(raw.decode("ascii"))
        if not isinstance(items, list) or items[:1] != [name] or len(items) != len(kinds) + 1:
            raise ValueError
        return tuple(_value(item, kind) for item, kind in zip(items[1:], kinds, strict=True))
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
        raise InvalidRequest(
            [
                {
                    "type": "cursor_invalid",
                    "loc": ["query", "cursor"],
                    "msg": "not a cursor of this list",
                }
            ]
        ) from None


def _value(item: object, kind: Kind) -> Value:
    if kind is int:
        if type(item) is not int or not 0 <= item <= ROW_ID_MAX:
            raise ValueError
        return item
    if kind is datetime:
        if not isinstance(item, str) or len(item) > 40:
            raise ValueError
        moment = datetime.fromisoformat(item)
        if moment.tzinfo is None or not MIN_MOMENT <= moment < MAX_MOMENT:
            raise ValueError
        return moment
    if not isinstance(item, str) or len(item) > MAX_TEXT or "\x00" in item:
        raise ValueError
    return item


def page_of(items: list[T], limit: int) -> tuple[list[T], T | None]:
    """Split ``limit + 1`` fetched items into the page and, when there is a next page, the
    last item shown (its key makes the next cursor)."""
    if len(items) > limit:
        page = items[:limit]
        return page, page[-1]
    return items, None
