"""What a command says when a server is not there: the database or Redis down, or a database
never migrated, is one ``error:`` line naming the setting, not a driver's traceback.

The command line's one handler (``cli/app.py``) asks :func:`as_stepmail_error` about any
exception that is not already a :class:`~orchestrator.errors.StepmailError`. The driver's
message is cut to its first line (psycopg names host and port, never the password)."""

from __future__ import annotations

import redis
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from orchestrator.errors import DatabaseNotMigrated, ServerUnavailable, StepmailError

_NOT_MIGRATED = ("no such table", "does not exist", "undefinedtable", "undefinedcolumn")


def as_stepmail_error(exc: BaseException) -> StepmailError | None:
    """The error the operator should see instead of ``exc``, or None when it is a bug."""
    if isinstance(exc, OperationalError | ProgrammingError):
        cause = _first_line(exc.orig if isinstance(exc, DBAPIError) else exc)
        if any(marker in cause.lower() for marker in _NOT_MIGRATED) or _undefined(exc):
            return DatabaseNotMigrated(
                f"the database is not migrated ({cause}): run `stepmail db upgrade`"
            )
        if isinstance(exc, OperationalError):
            return ServerUnavailable(f"database unreachable (STEPMAIL_DATABASE_URL): {cause}")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return ServerUnavailable(f"Redis unreachable (STEPMAIL_REDIS_URL): {_first_line(exc)}")
    return None


def _undefined(exc: DBAPIError) -> bool:
    return type(exc.orig).__name__ in ("UndefinedTable", "UndefinedColumn")


def _first_line(exc: object) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
