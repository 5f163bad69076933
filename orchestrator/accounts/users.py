"""Console users in the store: added, found, listed and disabled (never deleted, so the audit
log keeps naming them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select, update

from orchestrator.accounts.roles import Role
from orchestrator.db.tables import console_users

_USERS = console_users


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def insert_user(
    connection: Connection, email: str, role: Role, password_hash: str, now: datetime
) -> int | None:
    """The new user's id, or None when the address is taken (checked under the unique key)."""
    if find_user(connection, email) is not None:
        return None
    return int(
        connection.execute(
            insert(_USERS)
            .values(email=email, role=role.value, password_hash=password_hash, created_at=now)
            .returning(_USERS.c.id)
        ).scalar_one()
    )


def find_user(connection: Connection, email: str) -> User | None:
    row = connection.execute(_select().where(_USERS.c.email == email.lower())).first()
    return None if row is None else _user(row)


def password_hash_of(connection: Connection, email: str) -> tuple[User, str] | None:
    row = connection.execute(select(_USERS).where(_USERS.c.email == email.lower())).first()
    return None if row is None else (_user(row), row.password_hash)


def all_users(connection: Connection) -> list[User]:
    return [_user(row) for row in connection.execute(_select().order_by(_USERS.c.email))]


def emails_of_active_users(connection: Connection) -> list[str]:
    query = select(_USERS.c.email).where(_USERS.c.disabled_at.is_(None)).order_by(_USERS.c.email)
    return list(connection.execute(query).scalars())


def mark_disabled(connection: Connection, user_id: int, now: datetime) -> bool:
    """True if the user was active until now."""
    result = connection.execute(
        update(_USERS)
        .where(_USERS.c.id == user_id, _USERS.c.disabled_at.is_(None))
        .values(disabled_at=now)
    )
    return bool(result.rowcount)


def _select() -> Select[Any]:
    return select(
        _USERS.c.id, _USERS.c.email, _USERS.c.role, _USERS.c.created_at, _USERS.c.disabled_at
    )


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )
