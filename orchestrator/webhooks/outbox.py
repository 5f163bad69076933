"""Writing webhook messages in the transaction of the fact they report.

:func:`emit` first asks which enabled endpoints subscribe to the event (a tiny table); with
none, that one SELECT is all it costs, so the send path pays nothing more when nobody listens.
Otherwise it writes one message per endpoint: rolled back with the fact, committed with it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from orchestrator.db.tables import webhook_endpoints, webhook_messages

Data = Mapping[str, Any]


def subscribers(connection: Connection | Session, event_type: str) -> list[int]:
    """The enabled endpoints subscribed to ``event_type``."""
    rows = connection.execute(
        select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.events.like(f"%,{event_type},%"),
        )
    )
    return [int(row[0]) for row in rows]


def emit(
    connection: Connection | Session,
    event_type: str,
    data: Data | Callable[[], Sequence[Data]],
    now: datetime,
) -> int:
    """Queue ``event_type`` for every subscribed endpoint; ``data`` is one event's data, or a
    callable giving several (called only when someone subscribes). Returns messages written."""
    endpoints = subscribers(connection, event_type)
    if not endpoints:
        return 0
    events = data() if callable(data) else [data]
    rows = []
    for event in events:
        event_id = "msg_" + uuid.uuid4().hex
        payload = json.dumps(
            {"type": event_type, "timestamp": now.isoformat(), "data": dict(event)},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        for endpoint_id in endpoints:
            rows.append(
                {
                    "endpoint_id": endpoint_id,
                    "event_id": event_id,
                    "event_type": event_type,
                    "payload": payload,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if rows:
        connection.execute(insert(webhook_messages), rows)
    return len(rows)
