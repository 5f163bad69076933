"""Ids in console addresses: digits that fit the database's 32-bit id columns, else 404."""

from __future__ import annotations

from starlette.exceptions import HTTPException

DB_INT_MAX = 2**31 - 1


def parse_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > DB_INT_MAX:
        raise HTTPException(status_code=404)
    return int(text)


def optional_id(text: str | None) -> int | None:
    if not text:
        return None
    return parse_id(text)
