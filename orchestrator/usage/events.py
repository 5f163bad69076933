"""Usage events in: validate a batch, store it once, and react, all in one transaction.

All or nothing: a batch with one bad item or one unknown customer stores none of it. The
``event_key`` (the sender's ``id``, else a hash of the content) is unique per customer, so a
replayed event is a no-op and only events stored for the first time reach journeys and the
health score. On PostgreSQL the batch's customers are locked (in id order, so two batches
cannot deadlock): their events are processed one transaction at a time, which keeps
re-entry rules and health band changes race-free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.db.tables import customers, usage_events
from orchestrator.errors import UnknownCustomers
from orchestrator.guards.bounds import Moment, StrippedText
from orchestrator.health.loader import health_definition
from orchestrator.health.model import HealthDefinition
from orchestrator.health.rescore import rescore_customers, task_signals
from orchestrator.journeys.model import Journey
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.usage.reactions import NewEvent, react_to_events

MAX_BATCH = 1000
# Emitted by Stepmail itself; refused from outside so a caller cannot fake a tier change.
RESERVED_EVENTS = frozenset({"tier_changed"})


def _not_reserved(name: str) -> str:
    if name in RESERVED_EVENTS:
        raise ValueError(f"{name!r} is emitted by Stepmail itself and cannot be sent")
    return name


EventName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_.:-]*$", max_length=100), AfterValidator(_not_reserved)
]


class EventIn(StrippedText):
    """One product event. Send ``id`` to make retries safe: the same id is stored once."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255, description="The customer.")
    name: EventName = Field(description="e.g. login, report_created, nps_submitted")
    id: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_at: Moment | None = Field(
        default=None, description="ISO 8601 with offset; default: when received"
    )
    properties: dict[str, Any] = Field(default_factory=dict, description="e.g. {score: 9}")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAccepted(BaseModel):
    stored: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events already stored (same id): nothing done.")
    task_ids: list[int] = Field(default_factory=list, description="CSM tasks this created.")


@dataclass(frozen=True)
class UsageRules:
    """What reacts to events: the journeys, the health definition and the settings."""

    journeys: Mapping[str, Journey]
    health: HealthDefinition | None
    settings: Settings


@dataclass
class IngestResult:
    stored: list[NewEvent] = field(default_factory=list)
    duplicates: int = 0
    task_ids: list[int] = field(default_factory=list)


def event_key(event: EventIn, occurred_at: datetime) -> str:
    """The sender's id, else a hash of what the event says (name, time, properties)."""
    if event.id is not None:
        return event.id
    content = json.dumps(
        [event.name, occurred_at.isoformat(), event.properties], sort_keys=True, default=str
    )
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def ingest_events(
    session: Session,
    events: Sequence[EventIn],
    rules: UsageRules,
    now: datetime,
    *,
    batched: bool = True,
) -> IngestResult:
    """Store the events that are new, then react to them; raise before storing if any names
    an unknown customer (``batched``: they came as a list, so the error names each one)."""
    ids = _customer_ids(session, events, batched)
    lock_customers(session, sorted(set(ids.values())))
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for event in events:
        occurred_at = event.occurred_at or now
        customer_id = ids[event.external_id]
        key = event_key(event, occurred_at)
        rows.setdefault(
            (customer_id, key),
            {
                "customer_id": customer_id,
                "name": event.name,
                "event_key": key,
                "occurred_at": occurred_at,
                "received_at": now,
                "properties": event.properties,
            },
        )
    new = store_new_events(session, list(rows.values()))
    result = IngestResult(stored=new, duplicates=len(events) - len(new))
    result.task_ids = react(session, new, rules, now)
    return result


def react(session: Session, new: Sequence[NewEvent], rules: UsageRules, now: datetime) -> list[int]:
    """Journeys first (goals, exits, event steps), then the health score and risk signals."""
    react_to_events(session, new, rules.journeys, now)
    if rules.health is None:
        return []
    tasks = task_signals(session, new, rules.health, now)
    inputs = rules.health.input_events()
    touched = sorted({e.customer_id for e in new if e.name in inputs})
    tasks += rescore_customers(session, touched, rules.health, rules.journeys, rules.settings, now)
    return tasks


def store_new_events(session: Session, rows: list[dict[str, Any]]) -> list[NewEvent]:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: only the rows stored now come back."""
    if not rows:
        return []
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (  # executemany: SQLAlchemy batches it into cached multi-row INSERTs
        module.insert(usage_events)
        .on_conflict_do_nothing(index_elements=["customer_id", "event_key"])
        .returning(
            usage_events.c.customer_id,
            usage_events.c.name,
            usage_events.c.event_key,
            usage_events.c.occurred_at,
            usage_events.c.properties,
        )
    )
    return [
        NewEvent(r.customer_id, r.name, r.event_key, r.occurred_at, r.properties)
        for r in session.execute(statement, rows)
    ]


def _customer_ids(session: Session, events: Sequence[EventIn], batched: bool) -> dict[str, int]:
    wanted = {event.external_id for event in events}
    query = select(customers.c.external_id, customers.c.id).where(
        customers.c.external_id.in_(wanted)
    )
    found = {external_id: customer_id for external_id, customer_id in session.execute(query)}
    unknown = [(i, e.external_id) for i, e in enumerate(events) if e.external_id not in found]
    if unknown:
        raise UnknownCustomers(unknown, batched=batched)
    return found


def lock_customers(session: Session, customer_ids: list[int]) -> None:
    """PostgreSQL: one writer per customer at a time (SQLite's BEGIN IMMEDIATE already is)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(customers.c.id)
            .where(customers.c.id.in_(customer_ids))
            .order_by(customers.c.id)
            .with_for_update()
        ).all()


def usage_rules(runtime: Runtime) -> UsageRules:
    """The rules as this process has them loaded (the health file is cached per version)."""
    return UsageRules(
        runtime.journeys, health_definition(runtime.settings.journeys_dir), runtime.settings
    )
