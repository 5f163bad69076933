"""Writing webhook messages in the transaction of the fact they report.

:func:`emit` first asks which enabled endpoints subscribe to the event (a tiny table), then
writes one message per endpoint: rolled back with the fact, committed with it.

"Nobody subscribes to this event" is remembered per process for ``QUIET_FOR`` seconds, so a
fact nobody listens to costs no statement at all (the send path emits per batch, tasks per
task). An endpoint added or enabled is therefore used by other processes within those seconds
(at once in the process that added it: :func:`forget_subscribers`). A non-empty answer is never
remembered: messages only ever go to endpoints enabled when the fact's transaction asks, so a
disabled endpoint gets nothing more, in any process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from orchestrator.db.tables import webhook_endpoints, webhook_messages

Data = Mapping[str, Any]
QUIET_FOR = 5.0  # seconds "nobody subscribes to this event" is believed without asking again

_quiet_until: dict[str, float] = {}  # event type -> monotonic time the answer expires
_quiet_lock = threading.Lock()
_clock = time.monotonic  # the tests move it


def forget_subscribers() -> None:
    """Ask the database again on the next emit (this process changed an endpoint)."""
    with _quiet_lock:
        _quiet_until.clear()


def subscribers(connection: Connection | Session, event_type: str) -> list[int]:
    """The enabled endpoints subscribed to ``event_type``; none without a statement while a
    recent answer said none (see the module's docstring)."""
    with _quiet_lock:
        if _quiet_until.get(event_type, 0.0) > _clock():
            return []
    asked_at = _clock()
    rows = connection.execute(
        select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.events.like(f"%,{event_type},%"),
        )
    )
    found = [int(row[0]) for row in rows]
    if not found:
        with _quiet_lock:
            _quiet_until[event_type] = asked_at + QUIET_FOR
    return found


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
