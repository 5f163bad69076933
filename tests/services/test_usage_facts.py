"""What conditions can ask about usage, evaluated in the sandbox with data as of ``now``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from orchestrator.clock import FrozenClock
from orchestrator.delivery.facts import customer_facts
from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import evaluate_condition
from orchestrator.journeys.decide import condition_context
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.usage.facts import usage_context
from tests.support.environment import START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import (
    API_KEY,
    event,
    fresh_connection,
    long_nps_history,
    post_events,
    usage_rows_fetched,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def test_conditions_read_counts_windows_times_and_properties(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("user"))
    days_ago = [20, 10, 2, 1]
    post_events(client, *[event("user", "login", START - timedelta(days=d)) for d in days_ago])
    post_events(
        client,
        event("user", "nps_submitted", START - timedelta(days=3), id="n1", properties={"score": 4}),
    )
    post_events(
        client,
        event("user", "nps_submitted", START - timedelta(days=1), id="n2", properties={"score": 9}),
    )
    post_events(client, event("user", "login", START + timedelta(days=1)))  # in the future
    with runtime.engine.connect() as connection:
        customer = customer_facts(connection, 1)
    context = condition_context(
        customer, START, usage_context(runtime.engine, 1, START - timedelta(days=5), START)
    )

    def check(source: str) -> bool:
        return evaluate_condition(source, context)

    assert check("usage.count('login') == 4")
    assert check("usage.count('login', within='14d') == 3")
    assert check("usage.seen('nps_submitted') and not usage.seen('report_created')")
    assert check("usage.property('nps_submitted', 'score') == 9")
    assert check("usage.days_since('login') == 1 and usage.days_since('x') is none")
    assert check("usage.first('login') < usage.last('login')")
    assert check("days_since_enrollment == 5 and health.band in ('tips', 'at_risk', 'upsell')")
    with pytest.raises(ConditionError):
        check("usage._engine")
    with pytest.raises(ConditionError, match="within"):
        check("usage.count('login', within='two weeks') > 0")


def test_a_property_is_the_latest_events_however_long_the_history(
    client: TestClient, runtime: Runtime
) -> None:
    """``usage.property`` reads the latest event of the name at or before now, the later
    stored of two at one moment; on PostgreSQL from the index's last entry back to that
    moment, a handful of rows. (Ordered by moment and id, the query read the whole history
    wherever the planner sorted it in full; on this table's statistics it took an incremental
    sort and read 5 rows, so the bound here guards the new form, not the old one's fault:
    tests/services/test_health_inputs.py shows that.)"""
    post_signup(client, signup_payload("user"))
    post_signup(client, signup_payload("busy"))  # another customer's logins, in between
    assert post_events(client, *long_nps_history("user", START, 300)).status_code == 202
    logins = [event("busy", "login", START - timedelta(minutes=n)) for n in range(1, 301)]
    assert post_events(client, *logins).status_code == 202
    for key, score in (("t1", 3), ("t2", 8)):  # one moment, stored in this order
        item = event("user", "nps_submitted", START - timedelta(hours=1), id=key)
        assert post_events(client, {**item, "properties": {"score": score}}).status_code == 202
    later = event("user", "nps_submitted", START + timedelta(hours=1), properties={"score": 0})
    assert post_events(client, later).status_code == 202  # after now: not yet
    postgres = runtime.engine.dialect.name == "postgresql"
    if postgres:  # statistics of this table, not a test's before
        with runtime.engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.execute(text("ANALYZE usage_event"))
    with fresh_connection(runtime) as connection:
        before = usage_rows_fetched(connection) if postgres else 0
        usage = usage_context(connection, 1, START - timedelta(days=30), START)["usage"]
        latest = evaluate_condition(
            "usage.property('nps_submitted', 'score') == 8", {"usage": usage}
        )
        missing = evaluate_condition("usage.property('login', 'x', 5) == 5", {"usage": usage})
        fetched = usage_rows_fetched(connection) - before if postgres else 0

    assert latest and missing
    assert fetched <= 10, fetched
