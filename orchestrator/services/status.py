"""What an operator asks of a running Stepmail: how much is due and how late, how the schedule
stands, whether the database is migrated and the servers answer.

``due_backlog`` is what the metrics read at scrape time: one query on the partial index of
active rows (``wake_at <= now``), so it costs what is due, never the whole schedule.
``system_status`` is ``stepmail status``: a handful of grouped reads in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import redis
from sqlalchemy import Connection, Engine, func, inspect, select, text

from orchestrator.db.migrate import head_revisions
from orchestrator.db.models import WAKEABLE_SQL
from orchestrator.db.tables import csm_tasks, job_watermarks, scheduled_sends
from orchestrator.journeys.states import SendState
from orchestrator.services.health import HEALTH_DAILY
from orchestrator.webhooks.delivery import open_messages

_T = scheduled_sends


@dataclass(frozen=True)
class DueBacklog:
    count: int
    oldest_wake_at: datetime | None

    def lag_seconds(self, now: datetime) -> float:
        """How long the oldest due row has waited (0 when nothing is due)."""
        if self.oldest_wake_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_wake_at).total_seconds())


def due_backlog(engine: Engine, now: datetime) -> DueBacklog:
    """Active rows whose time has come, and the oldest of them (the partial index)."""
    with engine.connect() as connection:
        return _due_backlog(connection, now)


def _due_backlog(connection: Connection, now: datetime) -> DueBacklog:
    row = connection.execute(
        select(func.count(), func.min(_T.c.wake_at)).where(text(WAKEABLE_SQL), _T.c.wake_at <= now)
    ).one()
    oldest = row[1]
    if isinstance(oldest, str):  # SQLite's min() of a text column bypasses the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return DueBacklog(int(row[0]), oldest)


@dataclass(frozen=True)
class SystemStatus:
    """``stepmail status``; ``to_json`` is its ``--json`` form."""

    now: datetime
    send_states: dict[str, int]
    due: int
    due_lag_seconds: float
    open_tasks: int
    health_job_done_until: datetime | None
    schema_current: list[str]
    schema_head: list[str]
    redis: str  # "ok", "not configured", or why it does not answer
    webhooks: dict[str, int] = field(default_factory=dict)  # waiting, failed

    @property
    def problems(self) -> list[str]:
        """What an operator must act on; ``stepmail status`` exits 1 when there is any."""
        found = []
        if not self.schema_ok:
            found.append("the database schema is not the code's: run `stepmail db upgrade`")
        if self.redis not in ("ok", "not configured"):
            found.append(f"Redis {self.redis}")
        if self.unknown:
            found.append(f"{self.unknown} send(s) unknown: `stepmail sends unknown`")
        return found

    @property
    def schema_ok(self) -> bool:
        return self.schema_current == self.schema_head

    @property
    def unknown(self) -> int:
        return self.send_states.get(SendState.UNKNOWN.value, 0)

    @property
    def reconciling(self) -> int:
        return self.send_states.get(SendState.RECONCILING.value, 0)

    def to_json(self) -> dict[str, object]:
        done = self.health_job_done_until
        return {
            "now": self.now.isoformat(),
            "send_states": self.send_states,
            "due": self.due,
            "due_lag_seconds": round(self.due_lag_seconds, 3),
            "unknown_sends": self.unknown,
            "reconciling_sends": self.reconciling,
            "open_tasks": self.open_tasks,
            "health_job_done_until": done.isoformat() if done else None,
            "schema": {
                "current": self.schema_current,
                "head": self.schema_head,
                "up_to_date": self.schema_ok,
            },
            "redis": self.redis,
            "webhooks": self.webhooks,
            "problems": self.problems,
        }


def system_status(engine: Engine, now: datetime, *, redis_url: str | None) -> SystemStatus:
    """Everything ``stepmail status`` shows, read in one transaction, then Redis pinged."""
    with engine.connect() as connection:
        current = _schema_revisions(connection)
        if not current:
            states: dict[str, int] = {}
            backlog, open_tasks, done_until = DueBacklog(0, None), 0, None
            webhooks: dict[str, int] = {}
        else:
            states = _send_states(connection)
            backlog = _due_backlog(connection, now)
            open_tasks = connection.execute(
                select(func.count()).select_from(csm_tasks).where(csm_tasks.c.status == "open")
            ).scalar_one()
            done_until = connection.execute(
                select(job_watermarks.c.done_until).where(job_watermarks.c.name == HEALTH_DAILY)
            ).scalar_one_or_none()
            webhooks = {}
            if inspect(connection).has_table("webhook_message"):  # not before migration 0007
                webhooks = {
                    "waiting": open_messages(connection),
                    "failed": open_messages(connection, ("failed",)),
                }
    return SystemStatus(
        now=now,
        send_states=states,
        due=backlog.count,
        due_lag_seconds=backlog.lag_seconds(now),
        open_tasks=int(open_tasks),
        health_job_done_until=done_until,
        schema_current=sorted(current),
        schema_head=sorted(head_revisions()),
        redis=redis_state(redis_url),
        webhooks=webhooks,
    )


def _send_states(connection: Connection) -> dict[str, int]:
    rows = connection.execute(select(_T.c.state, func.count()).group_by(_T.c.state))
    counts = {state.value: 0 for state in SendState}
    counts.update({str(state): int(count) for state, count in rows})
    return counts


def _schema_revisions(connection: Connection) -> set[str]:
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return {
        str(row[0]) for row in connection.execute(text("SELECT version_num FROM alembic_version"))
    }


def queue_depth(redis_url: str, queue_name: str, timeout: float = 2.0) -> dict[str, float] | None:
    """The send queue in Redis, as Dramatiq's Redis broker keeps it: messages waiting for a
    worker (the queue's list), all it holds (waiting or in a worker's hands, unacknowledged)
    and dead letters (given up after Dramatiq's retries). None when Redis does not answer."""
    key = f"dramatiq:{queue_name}"
    try:
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            pipe = client.pipeline(transaction=False)
            pipe.llen(key)
            pipe.hlen(f"{key}.msgs")
            pipe.hlen(f"{key}.XQ.msgs")
            waiting, held, dead = pipe.execute()
        finally:
            client.close()
    except (redis.RedisError, ValueError):
        return None
    return {
        "stepmail_queue_waiting": float(waiting),
        "stepmail_queue_messages": float(held),
        "stepmail_queue_dead_letters": float(dead),
    }


def redis_state(redis_url: str | None, timeout: float = 2.0) -> str:
    """``ok``, ``not configured``, or the first line of why Redis does not answer (never the
    URL: it may carry a password)."""
    if not redis_url:
        return "not configured"
    try:
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    except ValueError:
        return "unreachable: not a Redis URL"
    try:
        client.ping()
    except redis.RedisError as exc:
        lines = str(exc).strip().splitlines()
        return "unreachable: " + (lines[0] if lines else type(exc).__name__)
    finally:
        client.close()
    return "ok"
