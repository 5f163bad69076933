"""Usage events in: what an event is, how a batch is read and checked, and how it is stored
once. Storing and reacting run in one transaction:
:func:`orchestrator.services.events.track_events`.

All or nothing: a batch with one bad item or one unknown customer stores none of it. The
``event_key`` (the sender's ``id``, else a hash of the content) is unique per customer, so a
replayed event is a no-op and only events stored for the first time (:class:`NewEvent`)
reach journeys and the health score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.db.tables import customers, usage_events
from orchestrator.errors import InvalidJson, InvalidRequest, UnknownCustomers
from orchestrator.guards.bounds import Moment, StrippedText
from orchestrator.guards.strict_json import field_errors, parse_json

MAX_BATCH = 1000
# Emitted by Stepmail itself; refused from outside so a caller cannot fake a tier change.
RESERVED_EVENTS = frozenset({"tier_changed", "stage_changed"})


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


@dataclass(frozen=True)
class NewEvent:
    """An event this transaction stored for the first time."""

    customer_id: int
    name: str
    event_key: str
    occurred_at: datetime
    properties: Mapping[str, Any]


class EventsAccepted(BaseModel):
    stored: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events already stored (same id): nothing done.")
    task_ids: list[int] = Field(default_factory=list, description="CSM tasks this created.")
    uncatalogued: int = Field(
        default=0,
        description="Events of this request whose name is not in the event catalogue "
        "(journeys/events.yaml): stored and reacted to all the same, but no journey checked "
        "against the catalogue can be waiting for them. 0 without a catalogue.",
    )
    uncatalogued_names: list[str] = Field(
        default_factory=list, description="Those names, each once, sorted."
    )


def event_key(event: EventIn, occurred_at: datetime) -> str:
    """The sender's id, else a hash of what the event says (name, time, properties)."""
    if event.id is not None:
        return event.id
    content = json.dumps(
        [event.name, occurred_at.isoformat(), event.properties], sort_keys=True, default=str
    )
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


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


def customer_ids(
    session: Session, events: Sequence[EventIn], *, batched: bool = True
) -> dict[str, int]:
    """Each event's customer id by external id; UnknownCustomers (naming every unknown one, by
    its index when ``batched``) before anything is stored."""
    wanted = {event.external_id for event in events}
    query = select(customers.c.external_id, customers.c.id).where(
        customers.c.external_id.in_(wanted)
    )
    found = {external_id: customer_id for external_id, customer_id in session.execute(query)}
    unknown = [(i, e.external_id) for i, e in enumerate(events) if e.external_id not in found]
    if unknown:
        raise UnknownCustomers(unknown, batched=batched)
    return found


def event_rows(
    events: Sequence[EventIn], ids: Mapping[str, int], now: datetime
) -> list[dict[str, Any]]:
    """The rows to insert: one per customer and event key (a repeat in the batch counts once)."""
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
                "properties": _with_nps_category(event.name, event.properties),
            },
        )
    return list(rows.values())


def _with_nps_category(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """An ``nps_submitted`` from the product gets the ``category`` Stepmail's own survey adds
    (detractor 0-6, passive 7-8, promoter 9-10), so the same journeys are entered on it."""
    score = properties.get("score")
    if name != "nps_submitted" or "category" in properties or type(score) is not int:
        return properties
    if not 0 <= score <= 10:
        return properties
    category = "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
    return {**properties, "category": category}


@dataclass(frozen=True)
class EventSubmission:
    """What ``POST /v1/events`` was sent: the events, and whether they came as a batch (then a
    problem names the event by its index)."""

    events: list[EventIn]
    batched: bool


def parse_event_body(body: bytes) -> EventSubmission:
    """A JSON object with ``events`` is a batch; any other object is one event. InvalidRequest
    names each field at fault."""
    try:
        data: Any = parse_json(body)
    except InvalidJson as exc:
        raise InvalidRequest(exc.errors) from None
    batched = isinstance(data, dict) and "events" in data
    try:
        if batched:
            return EventSubmission(EventBatch.model_validate(data).events, True)
        return EventSubmission([EventIn.model_validate(data)], False)
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None
