"""PostgreSQL sessions are set to UTC, so instants come back with ``datetime.UTC`` itself and
pass through ``UTCDateTime`` unconverted; a session moved to another zone (a ``SET``, a pooler
that told the driver of another zone) is put back before the pool hands it out again, and an
engine that does not keep its sessions in UTC converts each instant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine, column, create_engine, select, table, text

from orchestrator.db.engine import make_engine, normalise_database_url
from orchestrator.db.types import UTCDateTime
from tests.support.environment import require_server

pytestmark = pytest.mark.postgres

MOMENT = datetime(2026, 3, 29, 0, 30, tzinfo=timezone(timedelta(hours=-5)))
STAMPS = table("utc_session_probe", column("at", UTCDateTime()))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(require_server("STEPMAIL_TEST_POSTGRES_URL"))
    yield engine
    engine.dispose()


def test_a_session_is_in_utc_and_hands_back_utc_itself(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SHOW TIME ZONE")).scalar() == "UTC"
        read = connection.execute(text("SELECT now()")).scalar()
    assert read is not None and read.tzinfo is UTC


def _write_and_read(connection: Connection) -> list[datetime | None]:
    connection.execute(text("CREATE TEMPORARY TABLE utc_session_probe (at timestamptz)"))
    connection.execute(STAMPS.insert(), [{"at": MOMENT}, {"at": None}])
    return list(connection.execute(select(STAMPS.c.at)).scalars().all())


def _same_utc_instant(read: list[datetime | None]) -> None:
    assert read[0] == MOMENT and read[0].tzinfo is UTC
    assert read[0].isoformat() == "2026-03-29T05:30:00+00:00"
    assert read[1] is None


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/St_Johns"])
def test_a_session_moved_to_another_zone_is_put_back_before_its_next_use(zone: str) -> None:
    engine = make_engine(require_server("STEPMAIL_TEST_POSTGRES_URL"), pool_size=1)
    try:
        with engine.connect() as connection:
            first = connection.connection.dbapi_connection
            connection.execute(text(f"SET TIME ZONE '{zone}'"))
            connection.commit()
        with engine.connect() as connection:  # the same session, handed out again
            assert connection.connection.dbapi_connection is first
            assert connection.execute(text("SHOW TIME ZONE")).scalar() == "UTC"
            _same_utc_instant(_write_and_read(connection))
    finally:
        engine.dispose()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/St_Johns"])
def test_an_engine_that_does_not_keep_sessions_in_utc_converts_each_instant(zone: str) -> None:
    url = normalise_database_url(require_server("STEPMAIL_TEST_POSTGRES_URL"))
    engine = create_engine(url, connect_args={"options": f"-c TimeZone={zone}"})
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW TIME ZONE")).scalar() == zone
            _same_utc_instant(_write_and_read(connection))
    finally:
        engine.dispose()
