"""Every list of the read API answers a page: ``{"items": [...], "next_cursor": "…"}`` and, when
there is a next page, a ``Link: <…?cursor=…>; rel="next"`` header (RFC 8288). Pass
``next_cursor`` back as ``cursor`` (with the same filters) for the next page; ``null`` means
this was the last. Cursors are opaque (:mod:`orchestrator.guards.cursors`): a bad one is a 422
naming ``["query", "cursor"]``."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from orchestrator.guards.cursors import MAX_CURSOR

T = TypeVar("T")

CursorQuery = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR, description="`next_cursor` of the previous page"),
]
LINK_HEADER: dict[str, Any] = {
    "Link": {
        "description": 'The next page, `<…?cursor=…>; rel="next"` (absent on the last page)',
        "schema": {"type": "string"},
    }
}


class PageOut(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null: the last"
    )


def page_headers(request: Request, response: Response, next_cursor: str | None) -> None:
    """Add the ``Link`` header of the next page (a relative reference: no host is echoed)."""
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
