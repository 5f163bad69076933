"""Engine construction: one place that knows the quirks of each database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool

from orchestrator.db import fast_arrays, planning
from orchestrator.db.types import keeps_utc_sessions
from orchestrator.errors import ConfigurationError

NOT_A_DATABASE_URL = (
    "STEPMAIL_DATABASE_URL is not a database URL "
    "(expected sqlite:///path/to/file.db or postgresql://user:password@host/db)"
)
DATABASES = ("sqlite", "postgresql")
UPGRADE_HINT = "run `stepmail db upgrade`"


def normalise_database_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form operators paste and pick our driver (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str, *, read_only: bool = False, existing: bool = False, **kwargs: Any
) -> Engine:
    """Create an engine; for SQLite, make the parent folder and enable WAL and a busy timeout.

    ``read_only``: the database refuses every write through it (``stepmail plan`` promises
    to change nothing), and on SQLite a transaction does not take the write lock, so a read
    inside another connection's write transaction (a version's snapshot loaded while
    enrolling) never waits for it. ``existing``: a SQLite file that is not there is a
    ConfigurationError rather than a new empty database (and folders) at a mistyped path.
    """
    try:
        url = normalise_database_url(url)
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # never echoed: a malformed URL may carry a password
        raise ConfigurationError(NOT_A_DATABASE_URL) from None
    backend = parsed.get_backend_name()
    problem = unsupported_database(backend)
    if backend == "sqlite" and existing:
        problem = missing_sqlite_file(parsed.database)
    if problem:
        raise ConfigurationError(problem)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if read_only:
            event.listen(engine, "connect", _sqlite_query_only)
            event.listen(engine, "begin", _sqlite_begin_deferred)
        else:
            event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if read_only:
        kwargs.setdefault("connect_args", {"options": "-c default_transaction_read_only=on"})
    # A pool as large as a worker's threads: opening a PostgreSQL connection costs more than a
    # send. No pre-ping (a round trip per checkout); a dropped connection fails that one
    # transaction, is discarded by the pool, and the send is retried.
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_recycle", 1800)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", fast_arrays.register)
    event.listen(engine, "connect", _postgres_utc_session)
    event.listen(engine, "checkout", _postgres_still_in_utc)
    keeps_utc_sessions(engine.dialect)
    event.listen(engine, "do_execute", planning.execute_as_marked)
    return engine


def unsupported_database(backend: str) -> str | None:
    """Why a URL's database is not one Stepmail runs on, if it is not."""
    if backend in DATABASES:
        return None
    return f"STEPMAIL_DATABASE_URL: {backend!r} is not supported (SQLite or PostgreSQL)"


def missing_sqlite_file(database: str | None) -> str | None:
    """Why a SQLite database file is not there, if it is not (in-memory and ``file:`` URIs
    are taken as they are)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    if path.is_file():
        return None
    if not path.parent.is_dir():
        return f"STEPMAIL_DATABASE_URL: the folder {path.parent.resolve()} does not exist"
    return (
        f"STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet ({path.resolve()} "
        f"does not exist): {UPGRADE_HINT}"
    )


def _postgres_utc_session(dbapi_connection: Any, _record: Any) -> None:
    """Sessions in UTC, whatever the server's default: psycopg hands back every instant in
    the zone it knows the session is in (it converts each by the offset the server sends),
    so in UTC with ``datetime.UTC`` itself, which :class:`~orchestrator.db.types.UTCDateTime`
    then takes as it comes (~5,000 values in a batch of 1,000 events). Nothing in the SQL
    depends on the session's zone."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def _postgres_still_in_utc(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Each time the pool hands a connection out: put its session back in UTC if it was moved
    (a ``SET`` run on it, or a pooler that told psycopg of another zone), before anything is
    read through it. A lookup of what the server last reported, no round trip."""
    if dbapi_connection.info.parameter_status("TimeZone") != "UTC":
        _postgres_utc_session(dbapi_connection, record)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" hook issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_begin_deferred(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock at BEGIN, so two writers queue instead of failing mid-transaction."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def open_pooled(engine: Engine, count: int) -> int:
    """Open up to ``count`` of the pool's connections now and leave them in it; returns how
    many it holds. A PostgreSQL connection costs ~4 ms of the client's CPU (SCRAM's key
    derivation) and as much of the server's: a worker process opens what its threads hold at
    once as it boots, so the first batches after a start do not pay for it. Never more than
    the pool keeps (a connection past its size would be closed as soon as it came back)."""
    pool = engine.pool
    size = pool.size() if isinstance(pool, QueuePool) else 0
    held = []
    try:
        for _ in range(min(count, size)):
            held.append(engine.raw_connection())
    finally:
        for connection in held:
            connection.close()  # back to the pool, open
    return len(held)
