"""A customer's latest events for the console (usage/recent.py): the same rows on both
databases as ordering all of the customer's events by moment and id would give, ties at the
page's edge included; on PostgreSQL read name by name from the index's end, so a customer whose
events lie beneath many newer ones costs a page, not a history; and the tier's changes read by
their own name, so an active customer's page still shows them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, insert, select, text

from orchestrator.db.tables import customers, usage_events
from orchestrator.runtime import Runtime
from orchestrator.services import customer_directory
from orchestrator.settings import Settings
from orchestrator.usage.recent import RecentEvent, recent_events, recent_events_named
from tests.support.environment import make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, event_row, fresh_connection, usage_rows_fetched


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def test_the_latest_are_the_plain_orders_rows_ties_included(
    client: TestClient, runtime: Runtime
) -> None:
    ids = _sign_up(client, runtime, "busy", "other")
    now = runtime.clock.now()
    minute = timedelta(minutes=1)
    rows = [  # (name, minutes before now): three names, two moments shared across names
        ("login", 1),
        ("report_created", 1),
        ("login", 2),
        ("login", 3),
        ("nps_submitted", 3),
        ("report_created", 3),  # the fifth, sixth and seventh share the page's edge at 3
        ("login", 4),
        ("report_created", 5),
        ("login", 6),
    ]
    _store(
        runtime,
        [_row(ids["busy"], f"b{n}", name, now - ago * minute) for n, (name, ago) in enumerate(rows)]
        + [_row(ids["other"], "o1", "login", now)],  # another customer's, newer than all
    )
    with runtime.engine.connect() as connection:
        for limit in (1, 2, 3, 5, 6, 9, 20):
            expected = _plain(connection, ids["busy"], limit)
            assert recent_events(connection, ids["busy"], limit) == expected, limit
        top = recent_events(connection, ids["busy"], 6)
        assert recent_events(connection, ids["other"], 5) == [
            RecentEvent("login", now, {"n": "o1"})
        ]
        named = recent_events_named(connection, ids["busy"], "report_created", 2)
    assert [(e.name, e.occurred_at) for e in top[:2]] == [
        ("report_created", now - minute),  # stored after the login of the same moment
        ("login", now - minute),
    ]
    assert [e.properties["n"] for e in top[3:]] == ["b5", "b4", "b3"]  # tied at 3: later first
    assert [e.properties["n"] for e in named] == ["b1", "b5"]


def test_an_old_history_beneath_newer_events_is_read_a_page_at_a_time(
    client: TestClient, runtime: Runtime
) -> None:
    """Ordered by moment and id, PostgreSQL either sorted all of the customer's events or
    walked the moment's index through the other customer's newer ones: thousands of rows
    fetched for a page of ten. Name by name, each name's last ten."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite orders the customer's events in one query")
    ids = _sign_up(client, runtime, "old", "new")
    now = runtime.clock.now()
    year_ago = now - timedelta(days=365)
    names = ("login", "report_created", "nps_submitted")
    _store(
        runtime,
        [
            _row(ids["old"], f"o{n}", names[n % 3], year_ago - timedelta(minutes=n))
            for n in range(2_000)
        ]
        + [_row(ids["new"], f"n{n}", "login", now - timedelta(minutes=n)) for n in range(3_000)],
    )
    with runtime.engine.connect() as connection:  # statistics of this table, not a test's before
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE usage_event")
        )
        expected = _plain(connection, ids["old"], 10)
    with fresh_connection(runtime) as connection:
        before = usage_rows_fetched(connection)
        latest = recent_events(connection, ids["old"], 10)
        fetched = usage_rows_fetched(connection) - before

    assert latest == expected
    assert [e.properties["n"] for e in latest] == [f"o{n}" for n in range(10)]
    assert fetched <= 3 * 10 + 10, fetched  # each name's ten, and its descent to find it


def test_the_customer_page_shows_tier_changes_older_than_its_last_events(
    client: TestClient, runtime: Runtime
) -> None:
    ids = _sign_up(client, runtime, "active")
    now = runtime.clock.now()
    change = {"from": "tech", "to": "low"}
    _store(
        runtime,
        [
            {
                **_row(ids["active"], "t1", "tier_changed", now - timedelta(days=20)),
                "properties": change,
            },
            *(
                _row(ids["active"], f"l{n}", "login", now - timedelta(minutes=n))
                for n in range(customer_directory.EVENTS_SHOWN + 5)
            ),
        ],
    )
    profile = customer_directory.customer_profile(
        runtime.engine, "active", journeys=runtime.journeys
    )
    assert [(m.title, m.detail) for m in profile.tier_history] == [("tier_changed", change)]
    events = [m for m in profile.timeline if m.kind == "event"]
    assert len(events) == customer_directory.EVENTS_SHOWN
    assert {m.title for m in events} == {"login"}  # the change is older than the page


def _sign_up(client: TestClient, runtime: Runtime, *external_ids: str) -> dict[str, int]:
    for external_id in external_ids:
        assert post_signup(client, signup_payload(external_id)).status_code == 202
    with runtime.engine.connect() as connection:
        return dict(connection.execute(select(customers.c.external_id, customers.c.id)).all())


def _row(customer_id: int, key: str, name: str, at: datetime) -> dict[str, Any]:
    return event_row(customer_id, key, name, at, {"n": key})


def _store(runtime: Runtime, rows: list[dict[str, Any]]) -> None:
    """In list order, so ids follow it: a tie at one moment is broken by the later stored."""
    with runtime.engine.begin() as connection:
        connection.execute(insert(usage_events), rows)


def _plain(connection: Connection, customer_id: int, limit: int) -> list[RecentEvent]:
    e = usage_events
    query = (
        select(e.c.name, e.c.occurred_at, e.c.properties)
        .where(e.c.customer_id == customer_id)
        .order_by(e.c.occurred_at.desc(), e.c.id.desc())
        .limit(limit)
    )
    return [
        RecentEvent(r.name, r.occurred_at, dict(r.properties)) for r in connection.execute(query)
    ]
