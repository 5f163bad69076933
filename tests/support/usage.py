"""Helpers for the usage, health and hand-off tests: authenticated calls and small queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.pool import NullPool

from orchestrator.db.tables import enrollments, scheduled_sends, usage_events
from orchestrator.runtime import Runtime

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def event(external_id: str, name: str, at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"external_id": external_id, "name": name, **extra}
    if at is not None:
        item["occurred_at"] = at.isoformat()
    return item


def post_events(client: TestClient, *events: dict[str, Any]) -> Any:
    body: Any = events[0] if len(events) == 1 else {"events": list(events)}
    return client.post("/v1/events", json=body, headers=AUTH)


def send_states(runtime: Runtime, journey_id: str = "onboarding") -> dict[tuple[int, str], str]:
    """(customer id, step) → state of every row of ``journey_id``."""
    query = select(
        scheduled_sends.c.customer_id, scheduled_sends.c.step_id, scheduled_sends.c.state
    ).where(scheduled_sends.c.journey_id == journey_id)
    with runtime.engine.connect() as connection:
        return {(cid, step): state for cid, step, state in connection.execute(query)}


def enrollment_rows(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(enrollments).order_by(enrollments.c.id)))


def event_count(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return len(connection.execute(select(usage_events.c.id)).all())


def usage_rows_fetched(connection: Connection) -> int:
    """``usage_event`` rows this PostgreSQL backend has fetched through an index and not yet
    reported to the server's statistics (heap visits, the visibility checks of index-only
    scans included): on a connection of its own (:func:`fresh_connection`), what it has
    done so far."""
    fetched = connection.execute(
        text("SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'usage_event'")
    ).scalar_one()
    return int(fetched or 0)


@contextmanager
def fresh_connection(runtime: Runtime) -> Iterator[Connection]:
    """A transaction on a new backend, outside the pool: its statistics are its own."""
    engine = create_engine(runtime.engine.url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def event_row(
    customer_id: int, key: str, name: str, at: datetime, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``usage_event`` row to insert as is, received when it occurred."""
    return {
        "customer_id": customer_id,
        "name": name,
        "event_key": key,
        "occurred_at": at,
        "received_at": at,
        "properties": {} if properties is None else properties,
    }


def long_nps_history(external_id: str, now: datetime, answers: int) -> list[dict[str, Any]]:
    """``answers`` NPS answers an hour apart, the latest two hours before ``now``."""
    return [
        event(
            external_id,
            "nps_submitted",
            now - timedelta(hours=2 + n),
            id=f"h{n}",
            properties={"score": n % 11},
        )
        for n in range(answers)
    ]
