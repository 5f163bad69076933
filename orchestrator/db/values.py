"""``column IN (values)`` that costs one bound parameter on PostgreSQL.

An expanding ``IN`` renders one placeholder per value: for a batch of 1,000 events that is a
new statement text per batch size, compiled by SQLAlchemy and parsed by psycopg each time,
and never prepared. ``= ANY(:array)`` keeps the text fixed whatever the count, so it is
compiled once and prepared by the driver. SQLite has no arrays and keeps ``IN``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(
    column: ColumnElement[Any], values: Collection[Any], dialect: str
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (an empty collection matches nothing)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def one_of_param(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """:func:`one_of` with the values left to a parameter ``name``, for a statement built once
    per dialect (building a statement per call costs more CPU than running it)."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
