"""The raw inputs of a score, read for several customers at once: each component counts only
its own window (start excluded, ``now`` included, nothing later), adoption is the set of key
features ever used, the latest NPS is the last one (the later-stored one on a tie), and a
customer without events has none. PostgreSQL asks each question per customer
(health/inputs.py), SQLite through one grouped statement: both must read the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from orchestrator.db.tables import customers, usage_events
from orchestrator.health.inputs import load_inputs
from orchestrator.health.loader import load_health
from orchestrator.runtime import Runtime
from tests.support.environment import STANDARD_JOURNEYS
from tests.support.signups import post_signup, signup_payload

DEFINITION = load_health(STANDARD_JOURNEYS / "health.yaml")  # logins 14d, tickets 30d, nps


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
        inputs = load_inputs(connection, DEFINITION, [busy, ids["quiet"]], now)
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
