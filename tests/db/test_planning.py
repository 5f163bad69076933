"""The usage probes on PostgreSQL (orchestrator/db/planning.py): those of usage/prefetch and
health/inputs, and a send's lazy questions (usage/facts), never run from a plan the driver
prepared (a generic plan made while the table was small kept sequential scans), and a batch's
transaction runs without JIT (compiling thousands of index probes cost more than it saved)
and prices random pages as cached ones (its moved scores stored by key, not by hashing every
customer); a statement marked for binary rows reads the same values; and the reads a
long-running process makes by itself commit, keeping what its connections prepared."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from orchestrator.archive.store import ArchiveEntry, MailArchiver
from orchestrator.db.engine import make_engine
from orchestrator.db.planning import BINARY_RESULTS, PLAN_EACH_TIME
from orchestrator.health.inputs import load_inputs
from orchestrator.health.loader import load_health
from orchestrator.health.rescore import _STORE_MOVED_POSTGRES
from orchestrator.services.journey_versions import current_journey_versions
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.usage.facts import UsageFacts
from orchestrator.usage.prefetch import prefetch_usage, usage_questions
from orchestrator.usage.reactions import _active_enrollments
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


BINARY_PROBE = text(
    "SELECT CAST(7 AS integer) AS i, CAST(:big AS bigint) AS big, CAST('日本 é' AS varchar) AS s,"
    " CAST(:at AS timestamptz) AS at, CAST('{\"a\": [1, null, 2.5]}' AS json) AS j,"
    " CAST(1234.50 AS numeric(18, 2)) AS n, true AS b, CAST(NULL AS integer) AS z,"
    " ARRAY[3, 4] AS a"
)


def test_a_statement_marked_for_binary_rows_reads_the_same_values_in_binary(
    engine: Engine,
) -> None:
    params = {"big": 2**40, "at": START}
    formats: list[int] = []

    def result_format(_c: Any, cursor: Any, *_rest: Any) -> None:
        formats.append(cursor.pgresult.fformat(0))  # 0 text, 1 binary

    with engine.connect() as connection:
        event.listen(connection, "after_cursor_execute", result_format)
        as_text = connection.execute(BINARY_PROBE, params).one()
        for both in ({}, PLAN_EACH_TIME):  # alone, and with a statement run unprepared
            marked = BINARY_PROBE.execution_options(**BINARY_RESULTS, **both)
            for _ in range(RUNS):
                as_binary = connection.execute(marked, params).one()
                assert tuple(as_binary) == tuple(as_text)
                assert list(map(type, as_binary)) == list(map(type, as_text))
    assert formats == [0] + [1] * 2 * RUNS
    assert as_binary.at.tzinfo is UTC and as_binary.j == {"a": [1, None, 2.5]}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_every_usage_probe_is_planned_each_time(database_url: str) -> None:
    engine = make_engine(database_url)
    health = load_health(ROOT / "journeys" / "health.yaml")
    questions = usage_questions(["usage.count('login', within='14d') > 0"])
    try:
        with engine.connect() as connection:
            for _ in range(RUNS):
                prefetch_usage(connection, [1, 2], questions, START)
                load_inputs(connection, health, [1, 2], START + timedelta(days=1))
                lazy = UsageFacts(connection, 1, START)  # a send's question not asked ahead
                lazy.count("login", within="14d"), lazy.last("login"), lazy.weeks_with("x", 2)
            assert not _prepared(connection, "usage_event")
    finally:
        engine.dispose()


def _planning(connection: Connection) -> tuple[str, str]:
    """The session's jit and random_page_cost, as SHOW gives them."""
    jit = connection.execute(text("SHOW jit")).scalar()
    return str(jit), str(connection.execute(text("SHOW random_page_cost")).scalar())


AS_LEFT, FOR_PROBES = ("on", "4"), ("off", "1.1")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_batch_of_probes_is_planned_as_one_until_its_transaction_ends(database_url: str) -> None:
    """No JIT, random pages priced as cached ones: set once, for the batch's transaction."""
    engine = make_engine(database_url)
    health = load_health(ROOT / "journeys" / "health.yaml")
    questions = usage_questions([f"usage.count('e{n}', within='{n + 1}d') > 0" for n in range(10)])
    many, few = list(range(1, 101)), [1, 2]  # 100 customers x 10 questions: 1,000 probes
    try:
        with engine.connect() as connection:
            # set for the session, whatever the server's defaults: "left as it was" must
            # differ from the batch's settings for the checks below to prove anything
            connection.execute(text("SET jit = on"))
            connection.execute(text("SET random_page_cost = 4"))
            connection.commit()
            assert _planning(connection) == AS_LEFT
            prefetch_usage(connection, few, questions, START)
            load_inputs(connection, health, few, START)
            assert _planning(connection) == AS_LEFT  # a group of single events: untouched
            prefetch_usage(connection, many, questions, START)
            assert _planning(connection) == FOR_PROBES
            statements: list[str] = []
            event.listen(connection, "before_cursor_execute", lambda *a: statements.append(a[2]))
            load_inputs(connection, health, [*many, *range(200, 300)], START)  # 200 x 7
            assert len(statements) == 1  # set once a transaction
            connection.commit()
            assert _planning(connection) == AS_LEFT
            load_inputs(connection, health, many, START)  # 100 x 7 questions: 700
            assert _planning(connection) == AS_LEFT
            load_inputs(connection, health, [*many, *range(200, 300)], START)
            assert _planning(connection) == FOR_PROBES
            connection.rollback()
            # a server that prices random pages lower already keeps its price
            connection.execute(text("SET random_page_cost = 1.0"))
            connection.commit()
            load_inputs(connection, health, [*many, *range(200, 300)], START)
            assert _planning(connection) == ("off", "1")
            connection.rollback()
    finally:
        engine.dispose()


def _seed_customers(connection: Connection, count: int) -> None:
    """``count`` customers of about the API bench's size (~230 bytes a row)."""
    connection.execute(
        text(
            "INSERT INTO customer (external_id, public_id, email, name, company, plan,"
            " annual_contract_value, currency, locale, timezone, tier, tier_explicit,"
            " attributes, signed_up_at, created_at, updated_at, health_score, health_band)"
            " SELECT 'customer-' || g, 'pub-' || g, 'customer' || g || '@example.com',"
            " 'Customer ' || g, 'Company ' || g, 'pro', 1200, 'USD', 'en', 'Asia/Tokyo',"
            " 'tech', false, :attributes, :at, :at, :at, 40, 'at_risk'"
            " FROM generate_series(1, :count) AS g"
        ),
        {"at": START, "count": count, "attributes": json.dumps({"seats": 12, "note": "x" * 90})},
    )
    connection.execute(text("ANALYZE customer"))


def _moved_scores_plan(connection: Connection, ids: list[int]) -> set[tuple[str, str]]:
    """(node type, relation or index) of the plan health/rescore stores moved scores with."""
    statement = str(_STORE_MOVED_POSTGRES)
    components = json.dumps([{"logins": {"raw": 1, "value": 0.1, "weight": 30.0}}] * len(ids))
    params = {
        "ids": ids,
        "scores": [60] * len(ids),
        "bands": ["tips"] * len(ids),
        "components": components,
        "now": START,
    }
    compiled = text(f"EXPLAIN (FORMAT JSON) {statement}").bindparams(**params)
    plan = connection.execute(compiled).scalar_one()[0]["Plan"]
    return {
        (node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
        for node in _plan_nodes(plan)
    }


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_batch_s_moved_scores_are_stored_by_key_not_by_hashing_every_customer(
    database_url: str,
) -> None:
    """At PostgreSQL's price of a random page (4), storing 640 moved scores among 10,000
    customers hashed the whole customer table; the batch's price looks each one up."""
    engine = make_engine(database_url)
    health = load_health(ROOT / "journeys" / "health.yaml")
    moved = list(range(1, 10_001, 15))[:640]
    try:
        with engine.begin() as connection:
            _seed_customers(connection, 10_000)
        with engine.connect() as connection:
            connection.execute(text("SET random_page_cost = 4"))
            connection.commit()
            as_left = _moved_scores_plan(connection, moved)
            assert ("Seq Scan", "customer") in as_left  # what the batch's price prevents
            connection.rollback()
            load_inputs(connection, health, moved, START)  # 640 customers x 7 questions
            for_probes = _moved_scores_plan(connection, moved)
            connection.rollback()
    finally:
        engine.dispose()
    assert ("Index Scan", "customer_pkey") in for_probes
    assert not {node for node in for_probes if node[1] == "customer" and "Seq" in node[0]}


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_each_health_question_walks_one_customer_s_events_in_their_index(database_url: str) -> None:
    """One subquery a question and customer, each an index probe of that customer's events of
    one name: never the table, the occurred_at index, or every event of a name hashed."""
    engine = make_engine(database_url)
    health = load_health(ROOT / "journeys" / "health.yaml")
    names = ["login", "report_created", "support_ticket_opened", "nps_submitted"]
    statements: list[tuple[str, Any]] = []
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO usage_event (customer_id, name, event_key, occurred_at,"
                    " received_at, properties) SELECT g % 400, (CAST(:names AS varchar[]))"
                    "[1 + g % 4], 'k' || g, :at - g * interval '1 minute', :at, '{}'"
                    " FROM generate_series(1, 20000) AS g"
                ),
                {"names": names, "at": START},
            )
            connection.execute(text("ANALYZE usage_event"))
        with engine.connect() as connection:

            def seen(_c: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
                statements.append((statement, params))

            event.listen(connection, "before_cursor_execute", seen)
            inputs = load_inputs(connection, health, [1, 2, 3, 4], START)
            event.remove(connection, "before_cursor_execute", seen)
            statement, params = statements[-1]
            explained = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params)
            nodes = list(_plan_nodes(explained.scalar_one()[0]["Plan"]))
    finally:
        engine.dispose()
    # it read: customer n has only events of names[n % 4]
    assert inputs[1] == {"adoption": {"report_created"}}
    assert inputs[2]["support_tickets"] > 0 and inputs[4]["logins"] > 0
    assert inputs[3] == {"nps": None}  # an NPS event without a score
    on_table = [node for node in nodes if node.get("Relation Name") == "usage_event"]
    probes = [node["Index Name"] for node in nodes if "Index Name" in node]  # bitmap's too
    assert "Seq Scan" not in {node["Node Type"] for node in on_table}
    assert probes == ["ix_usage_event_customer_name"] * 7  # logins, 4 features, tickets, NPS
    assert not [node for node in nodes if str(node.get("Subplan Name", "")).startswith("hashed")]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_event_batchs_open_enrollments_are_planned_for_their_ids_each_time(
    database_url: str,
) -> None:
    """A generic plan could check each open enrollment's customer against the batch's ids
    one by one (11-12 ms against 0.5-0.7 ms for 1,000 customers on the event bench)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            for _ in range(RUNS):
                assert _active_enrollments(session, {1, 2}) == {}
            assert not _prepared(session.connection(), "FROM enrollment")
    finally:
        engine.dispose()


def _read_current_versions(engine: Engine) -> None:
    current_journey_versions(engine)


def _choose_an_archive_dictionary(engine: Engine) -> None:
    mail = OutgoingMail(
        idempotency_key="enr-1:welcome",
        sender=Mailbox("onboarding@example.com"),
        to=Mailbox("taro@example.jp"),
        subject="Welcome",
        html="<p>Welcome</p>",
        text="Welcome",
    )
    # no dictionary for the template yet: it looks for the newest, then stores one
    assert MailArchiver(engine).rows([ArchiveEntry(1, "welcome", mail)], START)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("read", [_read_current_versions, _choose_an_archive_dictionary])
def test_a_long_running_process_s_own_reads_leave_prepared_statements(
    database_url: str, read: Callable[[Engine], None]
) -> None:
    """The reads a process makes by itself on its pool's connections (the journey catalog's,
    once a second; a worker's choice of archive dictionary) end in COMMIT: psycopg deallocates
    everything a connection prepared when it rolls back, and the send and event paths'
    statements would be prepared and planned afresh."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)  # one connection: the same
    hot = text("SELECT count(*) FROM customer WHERE id > :id")
    try:
        with engine.begin() as connection:
            for _ in range(RUNS):
                connection.execute(hot, {"id": 0})
        read(engine)
        with engine.connect() as connection:
            assert _prepared(connection, "FROM customer WHERE id > $1")
    finally:
        engine.dispose()
