"""What storing a batch of events hands on to the reactions is each event as the database now
holds it (its time in UTC, its properties as the JSON column reads them back), only those
stored for the first time, in the batch's order, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db.tables import customers, usage_events
from orchestrator.runtime import Runtime
from orchestrator.usage.events import NewEvent, store_new_events
from tests.services.test_services import enroll

TOKYO = timezone(timedelta(hours=9))
RECEIVED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def customer_id(runtime: Runtime, external_id: str) -> int:
    enroll(runtime, external_id)
    with runtime.engine.connect() as connection:
        query = select(customers.c.id).where(customers.c.external_id == external_id)
        return int(connection.execute(query).scalar_one())


def row(cid: int, key: str, at: Any, **properties: Any) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "name": "login",
        "event_key": key,
        "occurred_at": at,
        "received_at": RECEIVED,
        "properties": properties,
    }


def stored(runtime: Runtime, keys: list[str]) -> list[NewEvent]:
    e = usage_events.c
    query = select(e.customer_id, e.name, e.event_key, e.occurred_at, e.properties).where(
        e.event_key.in_(keys)
    )
    with runtime.engine.connect() as connection:
        by_key = {r.event_key: NewEvent(*r) for r in connection.execute(query)}
    return [by_key[key] for key in keys]


def test_only_new_events_come_back_as_stored_in_order(runtime: Runtime) -> None:
    cid = customer_id(runtime, "stored-1")
    at = RECEIVED.astimezone(TOKYO) - timedelta(hours=1, microseconds=7)
    with Session(runtime.engine) as session, session.begin():
        first = store_new_events(session, [row(cid, "k2", at, plan="pro")])
    nested = {"score": 9, "tags": ["a", "日本"], "deep": {"n": 1.5, "none": None}}
    batch = [
        row(cid, "k1", at, **nested),
        row(cid, "k2", at, plan="pro"),  # stored above: not new
        row(cid, "k3", at + timedelta(minutes=1)),
        row(cid, "k0", at - timedelta(minutes=1)),
    ]
    with Session(runtime.engine) as session, session.begin():
        new = store_new_events(session, batch)
    assert [e.event_key for e in new] == ["k1", "k3", "k0"]
    assert first == stored(runtime, ["k2"])
    assert new == stored(runtime, ["k1", "k3", "k0"])
    for event in [*first, *new]:
        assert event.occurred_at.utcoffset() == timedelta(0)
    assert new[0].properties == nested
    assert new[1].properties == {}
    with Session(runtime.engine) as session, session.begin():
        assert store_new_events(session, batch) == []


def test_a_batch_received_without_times_is_stored_at_the_moment_received(
    runtime: Runtime,
) -> None:
    """All at the moment received (PostgreSQL is then sent no times at all), or each at its
    own time when one of them was sent with a time."""
    cid = customer_id(runtime, "stored-2")
    sent = RECEIVED.astimezone(TOKYO) - timedelta(days=2)
    with Session(runtime.engine) as session, session.begin():
        now = store_new_events(session, [row(cid, "n1", RECEIVED), row(cid, "n2", RECEIVED)])
        mixed = store_new_events(session, [row(cid, "m1", RECEIVED), row(cid, "m2", sent)])
    assert now == stored(runtime, ["n1", "n2"])
    assert [e.occurred_at for e in now] == [RECEIVED, RECEIVED]
    assert mixed == stored(runtime, ["m1", "m2"])
    assert [e.occurred_at for e in mixed] == [RECEIVED, sent]
    assert mixed[1].occurred_at.utcoffset() == timedelta(0)
