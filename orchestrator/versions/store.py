"""Version rows, their snapshots and the current version of each journey, inside the caller's
transaction.

The current version's row (``journey_current``) is the lock of a version change: the process
that applies one holds it ``FOR UPDATE`` (SQLite: the transaction began ``IMMEDIATE``), so two
processes that see the same new files take turns, and the second finds the work done.
Enrolling reads it ``FOR SHARE``, so a customer who signs up while a change is applied is
enrolled on the version that is current once it is done, never left behind on the old one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from orchestrator.db.tables import journey_current, journey_versions, snapshot_files
from orchestrator.db.upsert import insert_ignoring_conflicts
from orchestrator.journeys.versions import JourneyContent, VersionRef

_V = journey_versions
_CURRENT = journey_current


@dataclass(frozen=True)
class VersionRow:
    """A stored version without its snapshot."""

    ref: VersionRef
    journey_id: str
    seen_at: datetime
    applied_at: datetime | None
    blocked_reason: str | None
    apply_report: Mapping[str, Any] | None


@dataclass(frozen=True)
class StoredVersion:
    """A stored version with its snapshot: the YAML text and the template texts."""

    row: VersionRow
    yaml_text: str
    templates: Mapping[str, str]  # name → text
    template_hashes: Mapping[str, str]  # name → hash


def lock_current(connection: Connection, journey_id: str) -> int | None:
    """Take the journey's change lock and return its current version id (None: none yet)."""
    insert_ignoring_conflicts(connection, _CURRENT, [{"journey_id": journey_id}], ["journey_id"])
    query = select(_CURRENT.c.version_id).where(_CURRENT.c.journey_id == journey_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    version_id: int | None = connection.execute(query).scalar_one()
    return version_id


def current_versions(
    connection: Connection, journey_ids: Collection[str] | None = None, *, share: bool = False
) -> dict[str, int]:
    """Journey id → current version id. ``share``: wait for a change being applied and hold
    it off until this transaction ends (what enrolling does)."""
    postgres = connection.dialect.name == "postgresql"
    if journey_ids is not None:  # every event a journey reacts to: built once, ids a parameter
        rows = connection.execute(
            _CURRENT_OF[(postgres, share and postgres)], {"journey_ids": sorted(journey_ids)}
        )
        return {row.journey_id: row.version_id for row in rows}
    query = select(_CURRENT.c.journey_id, _CURRENT.c.version_id).where(
        _CURRENT.c.version_id.is_not(None)
    )
    if share and postgres:
        query = query.order_by(_CURRENT.c.journey_id).with_for_update(read=True)
    return {row.journey_id: row.version_id for row in connection.execute(query)}


def _current_of(postgres: bool, share: bool) -> Any:
    """The current versions of the journeys ``:journey_ids`` (one array parameter on
    PostgreSQL, so the text is the same for any list); ``share``: ``FOR SHARE``, in id order."""
    if postgres:
        wanted = _CURRENT.c.journey_id == any_(
            bindparam("journey_ids", type_=ARRAY(_CURRENT.c.journey_id.type))
        )
    else:
        wanted = _CURRENT.c.journey_id.in_(bindparam("journey_ids", expanding=True))
    query = select(_CURRENT.c.journey_id, _CURRENT.c.version_id).where(
        _CURRENT.c.version_id.is_not(None), wanted
    )
    if share:
        query = query.order_by(_CURRENT.c.journey_id).with_for_update(read=True)
    return query


# Built once: building it cost more CPU than running it (a fifth of a single event's reaction).
_CURRENT_OF = {key: _current_of(*key) for key in ((False, False), (True, False), (True, True))}


def current_refs(connection: Connection) -> dict[str, VersionRef]:
    """Journey id → its current version, as people name it."""
    query = select(_CURRENT.c.journey_id, _V.c.id, _V.c.number, _V.c.content_hash).join(
        _V, _V.c.id == _CURRENT.c.version_id
    )
    return {
        row.journey_id: VersionRef(row.id, row.number, row.content_hash)
        for row in connection.execute(query)
    }


def find_version(connection: Connection, journey_id: str, content_hash: str) -> VersionRow | None:
    row = connection.execute(
        select(_V).where(_V.c.journey_id == journey_id, _V.c.content_hash == content_hash)
    ).first()
    return _row(row) if row is not None else None


def next_number(connection: Connection, journey_id: str) -> int:
    found = connection.execute(
        select(func.max(_V.c.number)).where(_V.c.journey_id == journey_id)
    ).scalar()
    return int(found or 0) + 1


def insert_version(connection: Connection, content: JourneyContent, now: datetime) -> VersionRow:
    """Keep a content seen for the first time, its template texts once by their hash. Under
    the journey's change lock (:func:`lock_current`), so numbers follow the order seen."""
    hashes = content.template_hashes
    files = [
        {"content_hash": hashes[name], "text": text} for name, text in content.templates.items()
    ]
    unique = list({row["content_hash"]: row for row in files}.values())
    for start in range(0, len(unique), 100):
        insert_ignoring_conflicts(
            connection, snapshot_files, unique[start : start + 100], ["content_hash"]
        )
    connection.execute(
        insert(_V).values(
            journey_id=content.journey_id,
            number=next_number(connection, content.journey_id),
            content_hash=content.content_hash,
            yaml_text=content.yaml_text,
            templates=dict(hashes),
            seen_at=now,
        )
    )
    found = find_version(connection, content.journey_id, content.content_hash)
    assert found is not None
    return found


def load_version(connection: Connection, version_id: int) -> StoredVersion | None:
    row = connection.execute(select(_V).where(_V.c.id == version_id)).first()
    if row is None:
        return None
    hashes: dict[str, str] = dict(row.templates or {})
    texts = {
        found.content_hash: found.text
        for found in connection.execute(
            select(snapshot_files).where(
                snapshot_files.c.content_hash.in_(sorted(set(hashes.values())))
            )
        )
    }
    templates = {name: texts[digest] for name, digest in hashes.items() if digest in texts}
    return StoredVersion(_row(row), row.yaml_text, templates, hashes)


def make_current(
    connection: Connection,
    journey_id: str,
    version_id: int,
    report: Mapping[str, Any],
    now: datetime,
) -> None:
    """The version is current from now on, and marked applied (once: see the service)."""
    connection.execute(
        update(_V)
        .where(_V.c.id == version_id)
        .values(applied_at=now, apply_report=dict(report), blocked_reason=None)
    )
    connection.execute(
        update(_CURRENT)
        .where(_CURRENT.c.journey_id == journey_id)
        .values(version_id=version_id, applied_at=now)
    )


def mark_blocked(connection: Connection, version_id: int, reason: str) -> None:
    connection.execute(update(_V).where(_V.c.id == version_id).values(blocked_reason=reason[:2000]))


def list_versions(connection: Connection, journey_id: str) -> list[VersionRow]:
    rows = connection.execute(select(_V).where(_V.c.journey_id == journey_id).order_by(_V.c.number))
    return [_row(row) for row in rows]


def version_labels(connection: Connection, version_ids: Collection[int]) -> dict[int, str]:
    """Version id → ``version N``, for messages."""
    if not version_ids:
        return {}
    rows = connection.execute(select(_V.c.id, _V.c.number).where(_V.c.id.in_(sorted(version_ids))))
    return {row.id: f"version {row.number}" for row in rows}


def _row(row: Any) -> VersionRow:
    return VersionRow(
        VersionRef(row.id, row.number, row.content_hash),
        row.journey_id,
        row.seen_at,
        row.applied_at,
        row.blocked_reason,
        row.apply_report,
    )
