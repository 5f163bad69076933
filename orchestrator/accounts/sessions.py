"""Console sessions as rows: the browser's cookie carries a random token, the row its SHA-256.

A session ends when its row says so (logout, the user disabled), after ``idle`` without a
request, or ``lifetime`` after sign-in, whichever comes first. Each row holds the synchronizer
token its forms carry (CSRF).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from orchestrator.accounts.roles import Role
from orchestrator.db.tables import console_sessions, console_users

_SESSIONS = console_sessions
_USERS = console_users
# last_seen_at is written at most this often: a page view is not a write each time.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionRules:
    idle: timedelta
    lifetime: timedelta


@dataclass(frozen=True)
class LiveSession:
    """A signed-in user, as a request sees them."""

    session_id: int
    user_id: int
    email: str
    role: Role
    csrf_token: str
    expires_at: datetime  # the sooner of the idle and the absolute end


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(connection: Connection, user_id: int, token: str, now: datetime) -> int:
    return int(
        connection.execute(
            insert(_SESSIONS)
            .values(
                token_hash=token_hash(token),
                user_id=user_id,
                csrf_token=new_token(),
                created_at=now,
                last_seen_at=now,
            )
            .returning(_SESSIONS.c.id)
        ).scalar_one()
    )


@dataclass(frozen=True)
class StoredSession:
    """A session row that is not ended, with its user (active)."""

    id: int
    user_id: int
    email: str
    role: Role
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime

    def ends(self, rules: SessionRules) -> datetime:
        return min(self.last_seen_at + rules.idle, self.created_at + rules.lifetime)

    def live(self, rules: SessionRules, now: datetime) -> LiveSession:
        seen = now if now - self.last_seen_at >= TOUCH_EVERY else self.last_seen_at
        ends = min(seen + rules.idle, self.created_at + rules.lifetime)
        return LiveSession(self.id, self.user_id, self.email, self.role, self.csrf_token, ends)


def find_session(connection: Connection, token: str) -> StoredSession | None:
    """The open session the token names, if its user is active (a read: no lock, no write)."""
    row = connection.execute(
        select(
            _SESSIONS.c.id,
            _SESSIONS.c.user_id,
            _SESSIONS.c.csrf_token,
            _SESSIONS.c.created_at,
            _SESSIONS.c.last_seen_at,
            _USERS.c.email,
            _USERS.c.role,
        )
        .join(_USERS, _USERS.c.id == _SESSIONS.c.user_id)
        .where(
            _SESSIONS.c.token_hash == token_hash(token),
            _SESSIONS.c.ended_at.is_(None),
            _USERS.c.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return StoredSession(
        row.id,
        row.user_id,
        row.email,
        Role(row.role),
        row.csrf_token,
        row.created_at,
        row.last_seen_at,
    )


def needs_touch(found: StoredSession, now: datetime) -> bool:
    return now - found.last_seen_at >= TOUCH_EVERY


def touch(connection: Connection, session_id: int, now: datetime) -> None:
    connection.execute(
        update(_SESSIONS)
        .where(_SESSIONS.c.id == session_id, _SESSIONS.c.ended_at.is_(None))
        .values(last_seen_at=now)
    )


def end_session(connection: Connection, session_id: int, now: datetime) -> None:
    connection.execute(
        update(_SESSIONS)
        .where(_SESSIONS.c.id == session_id, _SESSIONS.c.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_sessions_of(connection: Connection, user_id: int, now: datetime) -> int:
    result = connection.execute(
        update(_SESSIONS)
        .where(_SESSIONS.c.user_id == user_id, _SESSIONS.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount)
