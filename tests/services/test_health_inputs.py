"""The health score's raw inputs (health/inputs.py) for many customers in one statement, on
both databases: adoption is the features a customer used at least once, "latest" the
properties of its latest event (the later stored of two at the same moment), events after
``now`` count for neither, and a customer named twice is answered once; each count only its
own window (start excluded, ``now`` included). PostgreSQL asks each question per customer,
SQLite through grouped statements: both must read the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from orchestrator.db.tables import customers, usage_events
from orchestrator.health.inputs import load_inputs
from orchestrator.health.loader import load_health
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import ROOT, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import (
    API_KEY,
    fresh_connection,
    long_nps_history,
    post_events,
    usage_rows_fetched,
)
from tests.support.usage import event as usage_event


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def test_adoption_and_latest_read_each_customers_own_events(
    client: TestClient, runtime: Runtime
) -> None:
    definition = load_health(ROOT / "journeys" / "health.yaml")
    now = runtime.clock.now()
    for name in ("a", "b", "c"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    day = timedelta(days=1)
    events = [
        usage_event("a", "report_created", at=now - 90 * day, id="a1"),
        usage_event("a", "report_created", at=now - day, id="a2"),
        usage_event("a", "workflow_created", at=now, id="a3"),  # at now: counted
        usage_event("a", "teammate_invited", at=now + day, id="a4"),  # after now: not yet
        usage_event("a", "nps_submitted", at=now - 3 * day, id="a5", properties={"score": 9}),
        usage_event("a", "nps_submitted", at=now - 2 * day, id="a6", properties={"score": 4}),
        usage_event("a", "nps_submitted", at=now + day, id="a7", properties={"score": 1}),
        usage_event("b", "nps_submitted", at=now - day, id="b1", properties={"score": 2}),
        usage_event("b", "nps_submitted", at=now - day, id="b2", properties={"score": 7}),
        usage_event("b", "integration_connected", at=now - 400 * day, id="b3"),
    ]
    for item in events:  # one request each: stored in this order, so b2 after b1
        assert post_events(client, item).status_code == 202
    with runtime.engine.connect() as connection:
        ids = dict(connection.execute(select(customers.c.external_id, customers.c.id)).all())
        inputs = load_inputs(connection, definition, [ids["a"], ids["b"], ids["c"]], now)
        twice = load_inputs(connection, definition, [ids["c"], ids["b"], ids["a"], ids["b"]], now)

    assert inputs[ids["a"]]["adoption"] == {"report_created", "workflow_created"}
    assert inputs[ids["a"]]["nps"] == 4
    assert inputs[ids["b"]]["adoption"] == {"integration_connected"}
    assert inputs[ids["b"]]["nps"] == 7  # same moment: the later stored
    assert "adoption" not in inputs[ids["c"]] and "nps" not in inputs[ids["c"]]
    assert twice == inputs


def test_the_latest_is_read_from_the_customers_last_events_not_its_history(
    client: TestClient, runtime: Runtime
) -> None:
    """PostgreSQL reads the latest answer from the index's last entry for the customer and
    name backwards, as far as its moment goes (two answers share it here, the later stored
    wins; one after ``now`` does not count): the rows it fetches stay a handful however many
    answers came before (ordered by moment and id at once, it fetched and sorted all 303)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's grouped statement ranks every event of the name")
    definition = load_health(ROOT / "journeys" / "health.yaml")
    now = runtime.clock.now()
    for name in ("long", "none"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    assert post_events(client, *long_nps_history("long", now, 300)).status_code == 202
    for key, score in (("t1", 3), ("t2", 8)):  # one moment, stored in this order
        item = usage_event("long", "nps_submitted", at=now - timedelta(hours=1), id=key)
        assert post_events(client, {**item, "properties": {"score": score}}).status_code == 202
    later = usage_event("long", "nps_submitted", at=now + timedelta(hours=1), id="later")
    assert post_events(client, {**later, "properties": {"score": 0}}).status_code == 202
    with runtime.engine.connect() as connection:  # statistics of this table, not a test's before
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE usage_event")
        )
    with fresh_connection(runtime) as connection:
        ids = dict(connection.execute(select(customers.c.external_id, customers.c.id)).all())
        before = usage_rows_fetched(connection)
        inputs = load_inputs(connection, definition, [ids["long"], ids["none"]], now)
        fetched = usage_rows_fetched(connection) - before

    assert inputs[ids["long"]]["nps"] == 8
    assert "nps" not in inputs[ids["none"]]
    assert fetched <= 20, fetched  # 312 when it read the history


def test_each_component_reads_its_own_window_for_each_customer(
    client: TestClient, runtime: Runtime
) -> None:
    for external_id in ("busy", "quiet"):
        assert post_signup(client, signup_payload(external_id)).status_code == 202
    now = runtime.clock.now()
    day = timedelta(days=1)
    with runtime.engine.begin() as connection:
        ids = dict(connection.execute(select(customers.c.external_id, customers.c.id)).all())
        busy = ids["busy"]
        rows = [
            ("login", now, {}),  # now itself counts
            ("login", now - day, {}),
            ("login", now - 14 * day, {}),  # the window's start does not
            ("login", now - 15 * day, {}),
            ("login", now + timedelta(seconds=1), {}),  # nor anything after now
            ("support_ticket_opened", now - 29 * day, {}),
            ("support_ticket_opened", now - 31 * day, {}),
            ("report_created", now - 400 * day, {}),  # adoption: ever
            ("report_created", now - 2 * day, {}),
            ("workflow_created", now + day, {}),  # not yet
            ("teammate_invited_elsewhere", now - day, {}),
            ("nps_submitted", now - 10 * day, {"score": 1}),
            ("nps_submitted", now - 2 * day, {"score": 3}),
            ("nps_submitted", now - 2 * day, {"score": 9}),  # same moment, stored later: wins
            ("nps_submitted", now + day, {"score": 0}),  # not yet
        ]
        connection.execute(
            insert(usage_events),
            [
                event_row(busy, i, name, at, properties, now)
                for i, (name, at, properties) in enumerate(rows)
            ],
        )
        inputs = load_inputs(
            connection, load_health(ROOT / "journeys" / "health.yaml"), [busy, ids["quiet"]], now
        )
    assert inputs == {
        busy: {"logins": 2, "support_tickets": 1, "adoption": {"report_created"}, "nps": 9},
        ids["quiet"]: {},
    }


def event_row(
    customer_id: int, n: int, name: str, at: datetime, properties: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": name,
        "event_key": f"k-{n}",
        "occurred_at": at,
        "received_at": now,
        "properties": properties,
    }
