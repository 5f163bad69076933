"""The lifecycle rules' usage questions answered for many customers in one statement
(usage/prefetch.py) give exactly what each customer's lazy ``UsageFacts`` answers, on both
databases, at window edges included; what cannot be answered ahead is left to be asked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sql_event
from sqlalchemy import select

from orchestrator.db.tables import customers
from orchestrator.health import stages
from orchestrator.health.inputs import load_inputs, usage_answers
from orchestrator.health.lifecycle import load_lifecycle
from orchestrator.health.loader import load_health
from orchestrator.health.stages import stage_questions
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.usage import prefetch
from orchestrator.usage.facts import UsageFacts
from orchestrator.usage.prefetch import prefetch_usage, usage_questions
from tests.support.environment import ROOT, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, post_events
from tests.support.usage import event as usage_event

RULES = [
    "usage.seen('workflow_created') and usage.count('login', within='14d') >= 5",
    "usage.weeks_with('report_created', 4) >= 3 and usage.count(name='login', within='1d') > 0",
    "usage.weeks_with('report_created') >= 1 or usage.seen('export', '30d')",
    # one span of weeks per name on PostgreSQL, whatever the weeks asked of it
    "usage.weeks_with('report_created', 8) >= 7 and usage.weeks_with('login', 2) == 2",
    # seen() alone stops at the first event; asked with count() it shares the count
    "usage.seen('login', '14d') and usage.seen('report_created')",
    "usage.count('login', within=window) > 0",  # computed: asked lazily
    "usage.days_since('login') < 3",  # another method: asked lazily
    "usage.weeks_with('report_created', 40) > 0",  # out of range: raises lazily, as always
]


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """The test journeys, or the folder a test names (``indirect`` parametrization)."""
    folder = getattr(request, "param", None)
    extra = {} if folder is None else {"journeys_dir": folder}
    return make_settings(tmp_path, database_url, api_key=API_KEY, **extra)


def history(
    now: datetime,
    names: dict[str, tuple[str, ...]],
    moments: list[timedelta],
    keep: Callable[[str, str, int], bool],
) -> list[dict[str, Any]]:
    """Events of each customer's names at each moment ago (the k-th where ``keep`` says)."""
    return [
        usage_event(customer, name, at=now - ago, id=f"{customer}-{name}-{k}")
        for customer, customer_names in names.items()
        for name in customer_names
        for k, ago in enumerate(moments)
        if keep(customer, name, k)
    ]


def test_only_literal_questions_are_answered_ahead() -> None:
    assert usage_questions(RULES) == {
        ("seen", "workflow_created", None),
        ("count", "login", "14d"),
        ("count", "login", "1d"),
        ("seen", "export", "30d"),
        ("seen", "login", "14d"),
        ("seen", "report_created", None),
        ("weeks_with", "report_created", 4),
        ("weeks_with", "report_created", 8),
        ("weeks_with", "login", 2),
    }
    shipped = load_lifecycle(ROOT / "journeys" / "lifecycle.yaml")
    assert len(usage_questions(s.when for s in shipped.stages if s.when)) == 6


def test_a_rule_that_is_one_question_is_answered_ahead() -> None:
    # Jinja's find_all skips the node it starts from: a rule that is only a call was asked
    # lazily, per customer (and the plain rules, missing its answer, fell back to the sandbox)
    assert usage_questions(["usage.seen('login')"]) == {("seen", "login", None)}
    assert usage_questions(["usage.weeks_with('x', 2)"]) == {("weeks_with", "x", 2)}


def test_prefetched_answers_are_the_lazy_ones(client: TestClient, runtime: Runtime) -> None:
    now = runtime.clock.now()
    for name in ("a", "b", "c"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    moments = [
        timedelta(0),
        timedelta(days=1),  # the edge of within='1d': not counted
        timedelta(days=1) - timedelta(seconds=1),
        timedelta(days=7),  # a week's edge: in the week before
        timedelta(days=8),
        timedelta(days=13, hours=23),
        timedelta(days=14),
        timedelta(days=22),
        timedelta(days=29),
        timedelta(days=28),  # the 4th week's edge, in the 5th
        timedelta(days=40),
        timedelta(days=49) - timedelta(microseconds=1),  # the last instant of the 7th week
        timedelta(days=56),  # the 8th week's edge: in none of them
        -timedelta(hours=1),  # in the future: not counted
    ]
    events = history(
        now,
        {
            "a": ("login", "report_created", "workflow_created", "export"),
            "b": ("login", "report_created"),
        },
        moments,
        lambda customer, name, k: (k + len(name)) % (2 if customer == "b" else 1) == 0,
    )
    assert post_events(client, *events).status_code == 202
    questions = usage_questions(RULES)
    with runtime.engine.connect() as connection:
        ids = [row.id for row in connection.execute(select(customers.c.id))]
        statements: list[str] = []
        sql_event.listen(connection, "before_cursor_execute", lambda *a: statements.append(a[2]))
        answers = prefetch_usage(connection, ids, questions, now)
        assert len(statements) == 1  # every question, every customer
        for customer_id in ids:
            lazy = UsageFacts(connection, customer_id, now)
            for key in questions:
                kind, name, arg = str(key[0]), str(key[1]), key[2]
                if kind == "count":
                    expected = lazy.count(name, None if arg is None else str(arg))
                elif kind == "seen":
                    expected = lazy.seen(name, None if arg is None else str(arg))
                else:
                    expected = lazy.weeks_with(name, int(str(arg)))
                assert answers[customer_id][key] == expected, (customer_id, key)
        # a customer named twice (a batch's events name it once each) is counted once
        assert prefetch_usage(connection, [*ids, *reversed(ids)], questions, now) == answers
    assert any(answers[c][("count", "login", "14d")] for c in ids)  # not all zeros
    assert any(answers[c][("weeks_with", "report_created", 4)] == 3 for c in ids)
    assert {answers[c][("weeks_with", "report_created", 8)] for c in ids} == {0, 5, 7}


def test_a_seeded_fact_asks_nothing_it_was_given(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with runtime.engine.connect() as connection:
        statements: list[str] = []
        sql_event.listen(
            connection,
            "before_cursor_execute",
            lambda *a: None if a[2].startswith("BEGIN") else statements.append(a[2]),
        )
        facts = UsageFacts(connection, 1, now, {("count", "login", "14d"): 7})
        assert facts.count("login", within="14d") == 7 and facts.seen("login", "14d")
        assert statements == []
        assert facts.count("login") == 0  # not given: asked
        assert len(statements) == 1
        assert facts.seen("login") is False and len(statements) == 1  # the count answers it
        assert facts.seen("export") is False  # asked: the first such event would answer it
        assert len(statements) == 2 and "LIMIT" in statements[-1]
        facts = UsageFacts(connection, 1, now, {("seen", "export", None): True})
        assert facts.seen("export") is True and len(statements) == 2


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_weeks_are_one_index_range_and_seen_one_event(client: TestClient, runtime: Runtime) -> None:
    # weeks_with('x', 8) was eight probes per customer, one per week; on PostgreSQL every
    # weeks_with of one event name is now one range of the index per customer (SQLite still
    # counts each week). seen('x') counted every such event; it now reads the first.
    now = runtime.clock.now()
    for name in ("a", "b", "c"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    events = [
        usage_event(customer, name, at=now - timedelta(days=days), id=f"{customer}-{name}-{days}")
        for customer in ("a", "b", "c")
        for name in ("report_created", "login")
        for days in (1, 9, 20)
    ]
    assert post_events(client, *events).status_code == 202
    questions = usage_questions(
        [
            "usage.weeks_with('report_created', 8) > 1 and usage.weeks_with('report_created') > 0"
            " and usage.weeks_with('login', 4) > 0 and usage.seen('login')"
        ]
    )
    with runtime.engine.connect() as connection:
        ids = list(connection.execute(select(customers.c.id)).scalars())
        sent: list[tuple[str, object]] = []
        sql_event.listen(connection, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])))
        answers = prefetch_usage(connection, ids, questions, now)
        statement, parameters = sent[-1]
        plan = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}",
            parameters,  # type: ignore[arg-type]
        ).scalar_one()
    assert {answers[c][("weeks_with", "report_created", 8)] for c in ids} == {3}
    assert {answers[c][("weeks_with", "login", 4)] for c in ids} == {3}

    assert all(answers[c][("seen", "login", None)] is True for c in ids)

    def scans(node: dict[str, Any]) -> list[dict[str, Any]]:
        own = [node] if node.get("Relation Name") == "usage_event" else []
        return own + [scan for child in node.get("Plans", []) for scan in scans(child)]

    found = scans(plan[0]["Plan"])
    assert sum(scan["Actual Loops"] for scan in found) == len(ids) * 3  # was len(ids) * 13
    # the two spans read their 3 events a customer each, seen('login') one of its 3 (EXPLAIN
    # gives rows per loop, rounded: every loop of a scan reads as many here)
    assert sum(scan["Actual Rows"] * scan["Actual Loops"] for scan in found) == len(ids) * 7


def test_the_health_inputs_answer_the_stage_rules_questions_they_share(
    client: TestClient, runtime: Runtime
) -> None:
    # the stage rules ask "ever seen" of two adoption features, logins in 14 days and tickets
    # in 30: the health file's inputs, read a moment before as of the same now, already know
    now = runtime.clock.now()
    for name in ("a", "b", "c"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    events = history(
        now,
        {
            "a": ("login", "workflow_created", "support_ticket_opened", "integration_connected"),
            "b": ("login", "support_ticket_opened"),
        },
        [timedelta(days=d) for d in (0, 1, 13, 14, 29, 30, 45)],
        lambda customer, _name, k: customer == "a" or k % 3 == 2,
    )
    assert post_events(client, *events).status_code == 202
    definition = load_health(ROOT / "journeys" / "health.yaml")
    questions = stage_questions(load_lifecycle(ROOT / "journeys" / "lifecycle.yaml"))
    with runtime.engine.connect() as connection:
        ids = list(connection.execute(select(customers.c.id)).scalars())
        answered = usage_answers(
            definition, load_inputs(connection, definition, ids, now), questions
        )
        for customer_id in ids:
            assert set(answered[customer_id]) == {
                ("seen", "workflow_created", None),
                ("seen", "integration_connected", None),
                ("count", "login", "14d"),
                ("count", "support_ticket_opened", "30d"),
            }
            lazy = UsageFacts(connection, customer_id, now)
            for (kind, event_name, within), value in answered[customer_id].items():
                ask = lazy.count if kind == "count" else lazy.seen
                assert value == ask(str(event_name), None if within is None else str(within))
    logins = sorted(str(answered[c][("count", "login", "14d")]) for c in ids)
    assert logins == ["0", "1", "3"]  # a: 0, 1 and 13 days ago; b: 13; c: none


def stage_statements(
    client: TestClient, runtime: Runtime, *events: dict[str, Any]
) -> list[list[object]]:
    """Post ``events`` as one batch; the values each run of the stage rules' usage statement
    (usage/prefetch.py) was given, flattened, one list a run."""
    runs: list[list[object]] = []

    def record(*args: Any) -> None:
        if "question" in args[2]:
            values = args[3].values() if isinstance(args[3], dict) else args[3]
            runs.append(
                [v for value in values for v in (value if isinstance(value, list) else [value])]
            )

    sql_event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        assert post_events(client, *events).status_code == 202
    finally:
        sql_event.remove(runtime.engine, "before_cursor_execute", record)
    return runs


@pytest.mark.parametrize("settings", [ROOT / "journeys"], indirect=True)  # health, lifecycle
def test_an_event_batch_asks_the_stage_rules_only_what_the_health_inputs_did_not(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``a`` has five logins in 14 days, so whether it is "active" turns on its weeks with
    reports, which the health inputs do not read: only that is asked, and only of ``a``."""
    for name in ("a", "b"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    with runtime.engine.connect() as connection:
        names = dict(connection.execute(select(customers.c.id, customers.c.external_id)).all())
    asked_about: list[list[str]] = []

    def prefetch_rest(connection: Any, ids: Any, *args: Any) -> Any:
        if ids:
            asked_about.append(sorted(names[i] for i in ids))
        return prefetch.prefetch_rest(connection, ids, *args)

    monkeypatch.setattr(stages, "prefetch_rest", prefetch_rest)
    logins = [usage_event("a", "login", id=f"a-login-{n}") for n in range(5)]
    runs = stage_statements(client, runtime, *logins, usage_event("b", "login", id="b-login"))
    assert len(runs) == 1
    asked = runs[0]
    assert "report_created" in asked  # weeks_with: not among the health inputs
    assert not {"login", "workflow_created", "integration_connected"} & set(map(str, asked))
    assert asked_about == [["a"]]  # b, one login: not "active" whatever its weeks


@pytest.mark.parametrize("settings", [ROOT / "journeys"], indirect=True)  # health, lifecycle
def test_a_batch_whose_stages_are_settled_by_what_is_known_reads_no_more(
    client: TestClient, runtime: Runtime
) -> None:
    """Customers of a few days with a login each: "self-sufficient" is false at 60 days,
    "active" at five logins, "established" is known from the health inputs. No usage
    statement runs for the stage rules, and the stages are what the rules say."""
    for name in ("a", "b"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    events = [usage_event(c, "login", id=f"{c}-login") for c in ("a", "b")]
    assert stage_statements(client, runtime, *events) == []
    with runtime.engine.connect() as connection:
        stages = connection.execute(
            select(customers.c.external_id, customers.c.stage).order_by(customers.c.external_id)
        ).all()
    assert [tuple(row) for row in stages] == [("a", "onboarding"), ("b", "onboarding")]
