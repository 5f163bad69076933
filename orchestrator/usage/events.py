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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import any_, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from orchestrator.customers.nps import nps_category
from orchestrator.db.json_text import json_text
from orchestrator.db.planning import BINARY_RESULTS
from orchestrator.db.tables import customers, usage_events
from orchestrator.errors import InvalidJson, InvalidRequest, UnknownCustomers
from orchestrator.guards.bounds import TRIMMED, Moment
from orchestrator.guards.strict_json import field_errors, parse_json

MAX_BATCH = 1000
NPS_EVENT = "nps_submitted"  # its properties get the answer's category (_with_nps_category)
# Emitted by Stepmail itself; refused from outside so a caller cannot fake a tier change.
RESERVED_EVENTS = frozenset({"tier_changed", "stage_changed"})


def _not_reserved(name: str) -> str:
    if name in RESERVED_EVENTS:
        raise ValueError(f"{name!r} is emitted by Stepmail itself and cannot be sent")
    return name


EventName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_.:-]*$", max_length=100), AfterValidator(_not_reserved)
]


class EventIn(BaseModel):
    """One product event. Send ``id`` to make retries safe: the same id is stored once."""

    # Text is checked as sent, then trimmed (TRIMMED, as StrippedText would, only where a
    # field can hold text: a name's pattern admits no space).
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str, Field(min_length=1, max_length=255), TRIMMED] = Field(
        description="The customer."
    )
    name: EventName = Field(description="e.g. login, report_created, nps_submitted")
    id: Annotated[str, Field(min_length=1, max_length=200), TRIMMED] | None = None
    occurred_at: Moment | None = Field(
        default=None, description="ISO 8601 with offset; default: when received"
    )
    properties: dict[str, Any] = Field(default_factory=dict, description="e.g. {score: 9}")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


_tuple_new = tuple.__new__  # a NamedTuple from a tuple of its fields, in C


class NewEvent(NamedTuple):
    """An event this transaction stored for the first time (a tuple: a batch makes one per
    event, and a frozen dataclass costs four times as much to build)."""

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


def _store_events_statement(module: Any) -> Any:
    return (  # executemany: SQLAlchemy batches it into cached multi-row INSERTs
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


_STORE_EVENTS = {False: _store_events_statement(sqlite), True: _store_events_statement(postgresql)}


# PostgreSQL: the batch as arrays, unnested side by side (``ROWS FROM`` keeps their order), so
# the statement's text is the same for one event or a thousand. A multi-row VALUES list (what
# executemany becomes) is a new 100 kB text per batch that the driver parses again each time:
# half a batch's CPU. The properties go as one JSON array, not a text[] of JSON texts: the
# driver quotes and escapes each element of a text array in Python (~16 ms per 1,000). Only
# the key of each row stored comes back: the rest is what was sent (reading back the time
# and the properties of 1,000 rows cost ~2 ms). A batch whose events all happened when
# received (none was sent with a time) sends no times: ``:occurred_ats`` is NULL, whose unnest
# has no rows, so ROWS FROM pads that column with NULLs and each event takes the moment
# received (the server parsed 1,000 equal timestamps for them: ~0.5 ms of its CPU).
_STORE_EVENTS_POSTGRES = text("""
    INSERT INTO usage_event (customer_id, name, event_key, occurred_at, received_at, properties)
    SELECT e.customer_id, e.name, e.event_key, COALESCE(e.occurred_at, :received_at),
        :received_at, e.properties
    FROM ROWS FROM (unnest(CAST(:customer_ids AS integer[])), unnest(CAST(:names AS varchar[])),
        unnest(CAST(:event_keys AS varchar[])), unnest(CAST(:occurred_ats AS timestamptz[])),
        json_array_elements(CAST(:properties AS json)))
        AS e(customer_id, name, event_key, occurred_at, properties)
    ON CONFLICT (customer_id, event_key) DO NOTHING
    RETURNING customer_id, event_key
""").execution_options(**BINARY_RESULTS)


def store_new_events(session: Session, rows: list[dict[str, Any]]) -> list[NewEvent]:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: only the rows stored now come back, each
    as stored (its time in UTC, its properties as the JSON column reads them)."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        received = {row["received_at"] for row in rows}
        assert len(received) == 1, "a batch is received at one moment"
        received_at = received.pop()
        occurred = [row["occurred_at"] for row in rows]
        # None when all happened as received (see the statement)
        occurred_ats = None if occurred.count(received_at) == len(rows) else occurred
        properties = json_text([row["properties"] for row in rows])
        params = {
            "received_at": received_at,
            "customer_ids": [row["customer_id"] for row in rows],
            "names": [row["name"] for row in rows],
            "event_keys": [row["event_key"] for row in rows],
            "occurred_ats": occurred_ats,
            "properties": properties,
        }
        stored = session.execute(_STORE_EVENTS_POSTGRES, params).all()
        # The properties as the JSON column would load them back: one json.loads for all.
        loaded = json.loads(properties) if any(row["properties"] for row in rows) else None
        new: Iterable[tuple[dict[str, Any], Any]] = zip(
            rows, loaded or [{} for _ in rows], strict=True
        )
        if len(stored) < len(rows):  # some were stored before: keep the others, in order
            keys = set(map(tuple, stored))
            new = (pair for pair in new if (pair[0]["customer_id"], pair[0]["event_key"]) in keys)
        return [
            _tuple_new(  # NewEvent(…) without its Python __new__: one call an event less
                NewEvent,
                (
                    row["customer_id"],
                    row["name"],
                    row["event_key"],
                    # as stored: in UTC (most are already: received now, no time sent)
                    at if (at := row["occurred_at"]).tzinfo is UTC else at.astimezone(UTC),
                    as_stored,
                ),
            )
            for row, as_stored in new
        ]
    result = session.execute(_STORE_EVENTS[False], rows)
    return [
        NewEvent(r.customer_id, r.name, r.event_key, r.occurred_at, r.properties)
        for r in result.all()
    ]


def _lock_customers_statement(postgres: bool) -> Any:
    c = customers.c
    query = select(
        c.id,
        c.external_id,
        c.tier,
        c.signed_up_at,
        c.health_score,
        c.health_band,
        c.cancelled_at,
        c.exited_at,
        c.converted_at,
        c.stage,
        c.stage_source,
        c.plan,
    )
    if postgres:  # one array parameter, so the text (and its prepared plan) is the same each time
        wanted = bindparam("external_ids", type_=ARRAY(c.external_id.type))
        locked = query.where(c.external_id == any_(wanted)).order_by(c.id).with_for_update()
        return locked.execution_options(**BINARY_RESULTS)
    return query.where(c.external_id.in_(bindparam("external_ids", expanding=True))).order_by(c.id)


# Built once: building a statement costs more CPU than running it for one event.
_LOCK_CUSTOMERS = {postgres: _lock_customers_statement(postgres) for postgres in (False, True)}


class EventCustomer(NamedTuple):
    """A customer an event batch names, read once under its lock: what storing, reacting,
    rescoring and the stage rules need of it (so none of them reads the customer again). A
    tuple, built from the row as it comes."""

    id: int
    external_id: str
    tier: str
    signed_up_at: datetime
    health_score: int | None
    health_band: str | None
    cancelled_at: datetime | None  # where the relationship stands (customers/relationship.py)
    exited_at: datetime | None
    converted_at: datetime | None
    stage: str | None  # what the lifecycle stage rules read (health/stages.py)
    stage_source: str | None
    plan: str


def lock_event_customers(
    session: Session, events: Sequence[EventIn], *, batched: bool = True
) -> dict[str, EventCustomer]:
    """Each event's customer by external id, locked (PostgreSQL: ``FOR UPDATE`` in id order,
    so two batches cannot deadlock; SQLite's ``BEGIN IMMEDIATE`` already serialises writers),
    in one statement; UnknownCustomers (naming every unknown one, by its index when
    ``batched``) before anything is stored."""
    wanted = sorted({event.external_id for event in events})
    query = _LOCK_CUSTOMERS[session.get_bind().dialect.name == "postgresql"]
    params = {"external_ids": wanted}
    rows = session.execute(query, params).all()
    # a tuple's name is fast; tuple.__new__ makes one without a Python call a row
    found = {c.external_id: c for c in map(partial(_tuple_new, EventCustomer), rows)}
    if len(found) < len(wanted):  # only then is an event's customer missing: name each one
        unknown = [(i, e.external_id) for i, e in enumerate(events) if e.external_id not in found]
        raise UnknownCustomers(unknown, batched=batched)
    return found


def customer_ids(
    session: Session, events: Sequence[EventIn], *, batched: bool = True
) -> dict[str, int]:
    """Each event's customer id by external id (locked: see :func:`lock_event_customers`)."""
    found = lock_event_customers(session, events, batched=batched)
    return {external_id: customer.id for external_id, customer in found.items()}


def event_rows(
    events: Sequence[EventIn], ids: Mapping[str, int], now: datetime
) -> list[dict[str, Any]]:
    """The rows to insert: one per customer and event key (a repeat in the batch counts once)."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for event in events:
        occurred_at = event.occurred_at or now
        customer_id = ids[event.external_id]
        # the id and the name asked here, not in a call for every event (~1% of a batch)
        key = event.id if event.id is not None else event_key(event, occurred_at)
        properties = event.properties
        if event.name == NPS_EVENT:
            properties = _with_nps_category(properties)
        rows.setdefault(
            (customer_id, key),
            {
                "customer_id": customer_id,
                "name": event.name,
                "event_key": key,
                "occurred_at": occurred_at,
                "received_at": now,
                "properties": properties,
            },
        )
    return list(rows.values())


def _with_nps_category(properties: dict[str, Any]) -> dict[str, Any]:
    """An ``nps_submitted`` from the product gets the ``category`` Stepmail's own survey adds
    (detractor 0-6, passive 7-8, promoter 9-10), so the same journeys are entered on it."""
    score = properties.get("score")
    if "category" in properties or type(score) is not int:
        return properties
    if not 0 <= score <= 10:
        return properties
    return {**properties, "category": nps_category(score)}


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
