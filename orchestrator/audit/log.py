"""Writing and reading audit rows (inside a caller's transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from orchestrator.db.tables import audit_log

_AUDIT = audit_log
CLI = "cli"  # the actor of a change made with the stepmail command


@dataclass(frozen=True)
class Actor:
    """Who acts: a console user (id and address), or the command line."""

    name: str
    user_id: int | None = None


COMMAND_LINE = Actor(CLI)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target_kind: str
    target_id: str
    details: Mapping[str, Any] = field(default_factory=dict)


def record(
    connection: Connection,
    actor: Actor,
    action: str,
    target: tuple[str, object],
    now: datetime,
    **details: Any,
) -> None:
    """One row: ``target`` is (kind, id), e.g. ("enrollment", 42)."""
    kind, target_id = target
    connection.execute(
        insert(_AUDIT).values(
            at=now,
            actor_id=actor.user_id,
            actor=actor.name[:320],
            action=action[:50],
            target_kind=kind[:30],
            target_id=str(target_id)[:320],
            details=details,
        )
    )


def recent(
    connection: Connection,
    *,
    limit: int,
    before_id: int | None = None,
    target: tuple[str, str] | None = None,
) -> list[AuditRecord]:
    """Newest first, ``limit`` rows older than ``before_id``; one target's rows if given
    (served by the ``at`` and ``(target_kind, target_id, at)`` indexes)."""
    query = select(_AUDIT).order_by(_AUDIT.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(_AUDIT.c.id < before_id)
    if target is not None:
        query = query.where(_AUDIT.c.target_kind == target[0], _AUDIT.c.target_id == target[1])
    return [
        AuditRecord(r.id, r.at, r.actor, r.action, r.target_kind, r.target_id, dict(r.details))
        for r in connection.execute(query)
    ]
