"""A result's rows as named tuples, for the hot paths that read many columns of many rows.

SQLAlchemy's ``Row`` answers ``row.customer_id`` only after its class's own attribute lookup
has failed: an ``AttributeError`` is made, its message formatted and dropped, every time.
Measured here (SQLAlchemy 2.1, Python 3.11): ~1.2 µs a column read by name against ~40 ns
for a named tuple's field, and ~0.3 µs to build the tuple from the row. A send reads ~40
columns of its claim's and its facts' rows: read from named tuples, a mail took 4.9% fewer
instructions (bench/README, "Session 23").

Rows are fetched at once (``Result.all``): iterating a result fetches one row a call, through
SQLAlchemy's and psycopg's Python (the health inputs read so: ~4,400 instructions a row more;
bench/README, "Session 28")."""

from __future__ import annotations

import collections
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Result

# Called through a name of this type so mypy does not require literal field names: the
# fields are the result's column keys, known only when it runs.
_namedtuple: Callable[..., Any] = collections.namedtuple


def named_rows(result: Result[Any]) -> list[Any]:
    """Every row of ``result`` as a named tuple of its columns, in order (``row.name`` and
    ``row[i]`` read as on a ``Row``). The keys must be valid field names: a label such as
    ``count(*)`` or ``_private`` is a ValueError here, not a renamed field."""
    make = row_type(tuple(result.keys()))._make
    return [make(row) for row in result.all()]  # one fetch, not a driver call a row


@lru_cache(maxsize=64)
def row_type(keys: tuple[str, ...]) -> Any:
    """The named tuple type of these column keys, made once per set of keys."""
    return _namedtuple("NamedRow", keys)
