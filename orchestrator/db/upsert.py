"""Insert-if-absent that is safe under concurrency on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(
    session: Session | Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
) -> int:
    """``INSERT … ON CONFLICT DO NOTHING``: a concurrent twin waits on the unique index, then
    no-ops. Returns how many rows this call inserted."""
    if not rows:
        return 0
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).values(list(rows))
    statement = statement.on_conflict_do_nothing(index_elements=list(conflict_columns))
    inserted = session.execute(statement.returning(*table.primary_key.columns)).all()
    return len(inserted)


def insert_ignoring_conflicts_on(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
) -> None:
    """The same on a Connection, when nobody needs to know what was inserted."""
    if not rows:
        return
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    connection.execute(statement, list(rows))


def upsert_on(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """``INSERT … ON CONFLICT DO UPDATE``: each row written, replacing ``update_columns``."""
    if not rows:
        return
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = module.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict_columns),
        set_={name: statement.excluded[name] for name in update_columns},
    )
    connection.execute(statement, list(rows))


def insert_many_ignoring_conflicts(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    returning: str,
) -> list[Any]:
    """:func:`insert_ignoring_conflicts` for many rows of the same keys: one statement
    compiled once and sent in batches (SQLAlchemy's "insertmanyvalues"), where a multi-row
    ``VALUES`` would be compiled anew for every chunk. Returns the ``returning`` column of each
    row inserted."""
    if not rows:
        return []
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c[returning])
    )
    return list(connection.execute(statement, list(rows)).scalars())


def insert_selected_ignoring_conflicts(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    source: Select[Any],
    conflict_columns: Sequence[str],
    returning: str,
) -> list[Any]:
    """``INSERT … SELECT … ON CONFLICT DO NOTHING``: rows made by the database from rows it
    has, none sent over the wire. Returns the ``returning`` column of each row inserted."""
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .from_select(list(columns), source)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c[returning])
    )
    return list(connection.execute(statement).scalars())
