"""Statements marked ``PLAN_EACH_TIME`` are never run from a plan the driver prepared: psycopg
prepares a statement on the server from its fifth run, and PostgreSQL may then keep a generic
plan that was right when the table was small (the per-customer probes of usage/prefetch and
health/inputs; orchestrator/db/engine.py says what that cost)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from orchestrator.db.engine import PLAN_EACH_TIME, make_engine
from orchestrator.health.inputs import load_inputs
from orchestrator.health.loader import load_health
from orchestrator.usage.prefetch import prefetch_usage, usage_questions
from tests.support.environment import ROOT, START, require_server

pytestmark = pytest.mark.postgres

RUNS = 7  # past psycopg's prepare_threshold (5)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(require_server("STEPMAIL_TEST_POSTGRES_URL"))
    yield engine
    engine.dispose()


def _prepared(connection: Connection, fragment: str) -> list[str]:
    rows = connection.execute(text("SELECT statement FROM pg_prepared_statements"))
    return [statement for (statement,) in rows if fragment in statement]


def test_a_marked_statement_is_never_prepared_and_an_unmarked_one_is(engine: Engine) -> None:
    plain = text("SELECT count(*) FROM plan_probe WHERE x > :x")
    marked = text("SELECT count(*) FROM plan_probe WHERE x >= :x").execution_options(
        **PLAN_EACH_TIME
    )
    with engine.connect() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE plan_probe (x integer)"))
        connection.execute(text("INSERT INTO plan_probe SELECT generate_series(1, 10)"))
        for _ in range(RUNS):
            assert connection.execute(plain, {"x": 3}).scalar() == 7
            assert connection.execute(marked, {"x": 3}).scalar() == 8
        assert _prepared(connection, "x > $1")  # the driver prepares what is not marked
        assert not _prepared(connection, "x >= ")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_per_customer_probes_are_planned_each_time(database_url: str) -> None:
    engine = make_engine(database_url)
    health = load_health(ROOT / "journeys" / "health.yaml")
    questions = usage_questions(["usage.count('login', within='14d') > 0"])
    try:
        with engine.connect() as connection:
            for _ in range(RUNS):
                prefetch_usage(connection, [1, 2], questions, START)
                load_inputs(connection, health, [1, 2], START + timedelta(days=1))
            assert not _prepared(connection, "usage_event AS e")
    finally:
        engine.dispose()
