"""Lists sent as PostgreSQL arrays through the engine's faster list dumper come back exactly
as sent, on a real server: every string that needs quoting, NULLs, big and negative ints,
aware times in any offset; what it does not handle is left to psycopg, which behaves as
before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from orchestrator.db.engine import make_engine
from orchestrator.db.fast_arrays import FlatListDumper, flat_array_literal
from tests.support.environment import require_server

TOKYO = timezone(timedelta(hours=9))
AWKWARD = [
    "plain",
    "",
    "NULL",
    "null",
    " spaced ",
    'a "quote"',
    "back\\slash",
    '\\"',
    "{braces}",
    "comma,semicolon;",
    "tab\tline\r\nfeed",
    "日本語\u3000全角",
    "\u2028",
    "x" * 5000,
]


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(require_server("STEPMAIL_TEST_POSTGRES_URL"))
    yield engine
    engine.dispose()


def round_trip(engine: Engine, sql: str, values: list[Any]) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), {"values": values}).scalar_one()


@pytest.mark.postgres
def test_the_engine_writes_lists_with_the_flat_dumper(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        dumper = raw.adapters.get_dumper(list, psycopg.adapt.PyFormat.AUTO)
    assert dumper is FlatListDumper


@pytest.mark.postgres
def test_strings_come_back_as_sent(engine: Engine) -> None:
    values = [*AWKWARD, None]
    assert round_trip(engine, "SELECT CAST(:values AS varchar[])", values) == values
    assert round_trip(engine, "SELECT CAST(:values AS text[])", values) == values


@pytest.mark.postgres
def test_ints_and_times_come_back_as_sent(engine: Engine) -> None:
    ints = [0, -1, 2**31, -(2**40), None, 7]
    assert round_trip(engine, "SELECT CAST(:values AS bigint[])", ints) == ints
    times = [
        datetime(2026, 11, 30, 17, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 1, 9, 30, tzinfo=TOKYO),
        None,
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ]
    back = round_trip(engine, "SELECT CAST(:values AS timestamptz[])", times)
    assert back == times  # the same instants (PostgreSQL answers in its own zone)


@pytest.mark.postgres
def test_repeated_times_and_plain_strings_come_back_as_sent(engine: Engine) -> None:
    """The usual batch: one instant many times (in any zone), strings with nothing to escape
    beside one that has (the list then takes the quoting path as a whole)."""
    moment = datetime(2026, 11, 30, 17, 0, 0, 500, tzinfo=UTC)
    times = [moment] * 6 + [moment.astimezone(TOKYO)] * 3 + [moment + timedelta(days=1)]
    back = round_trip(engine, "SELECT CAST(:values AS timestamptz[])", times)
    assert back == times
    plain = [f"run-b{n}" for n in range(50)]
    assert round_trip(engine, "SELECT CAST(:values AS varchar[])", plain) == plain
    mixed = [*plain, 'a "quote"', "back\\slash"]
    assert round_trip(engine, "SELECT CAST(:values AS varchar[])", mixed) == mixed


@pytest.mark.postgres
def test_what_it_does_not_handle_is_psycopgs(engine: Engine) -> None:
    naive = [datetime(2026, 11, 30, 17, 0)]
    assert round_trip(engine, "SELECT CAST(:values AS timestamp[])", naive) == naive
    assert round_trip(engine, "SELECT CAST(:values AS int[][])", [[1, 2], [3, 4]]) == [
        [1, 2],
        [3, 4],
    ]
    assert round_trip(engine, "SELECT CAST(:values AS boolean[])", [True, False]) == [
        True,
        False,
    ]
    assert round_trip(engine, "SELECT CAST(:values AS text[])", []) == []
    with pytest.raises(Exception, match="NUL"):
        round_trip(engine, "SELECT CAST(:values AS text[])", ["a\x00b"])


def test_the_literal_of_each_kind() -> None:
    assert flat_array_literal([1, None, -2]) == "{1,NULL,-2}"
    assert flat_array_literal(['a"b', "c\\d", None]) == '{"a\\"b","c\\\\d",NULL}'
    moment = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert flat_array_literal([moment]) == '{"2026-11-30T17:00:00+00:00"}'
    text = '"2026-11-30T17:00:00+00:00"'
    assert flat_array_literal([moment] * 3) == "{" + ",".join([text] * 3) + "}"
    later = moment + timedelta(hours=1)
    assert flat_array_literal([moment, None, later]) == (
        '{"2026-11-30T17:00:00+00:00",NULL,"2026-11-30T18:00:00+00:00"}'
    )
    assert flat_array_literal(["a", "", "b c"]) == '{"a","","b c"}'
    for handled_by_psycopg in (
        [],
        [None],
        [1, "a"],
        [True],
        [[1]],
        [1.5],
        [moment.replace(tzinfo=None)],
        [moment, moment.replace(tzinfo=None)],
        [None, moment.replace(tzinfo=None)],
        ["a", "b\x00"],
    ):
        assert flat_array_literal(handled_by_psycopg) is None
