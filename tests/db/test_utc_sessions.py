"""PostgreSQL sessions are set to UTC, so instants come back with ``datetime.UTC`` itself and
pass through ``UTCDateTime`` unconverted; an instant read in a session of another zone (a
pooler that dropped the ``SET``) still comes back as the same UTC instant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, column, select, table, text

from orchestrator.db.engine import make_engine
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


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/St_Johns"])
def test_an_instant_reads_back_as_the_same_utc_instant_in_any_session_zone(
    engine: Engine, zone: str
) -> None:
    with engine.connect() as connection:
        connection.execute(text(f"SET TIME ZONE '{zone}'"))
        connection.execute(text("CREATE TEMPORARY TABLE utc_session_probe (at timestamptz)"))
        connection.execute(STAMPS.insert(), [{"at": MOMENT}, {"at": None}])
        read = connection.execute(select(STAMPS.c.at)).scalars().all()
    assert read[0] == MOMENT and read[0].tzinfo is UTC
    assert read[0].isoformat() == "2026-03-29T05:30:00+00:00"
    assert read[1] is None
