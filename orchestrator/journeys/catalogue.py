"""The event catalogue (``journeys/events.yaml``): every product event journeys and the health
score may name, what it means and the properties it carries, with their types.

Event names are free text to the API, so a typo in a journey (``on_event: report_creatd``)
would wait forever for an event that never comes. ``stepmail check`` refuses any name the
catalogue does not hold, and ``POST /v1/events`` flags the names it does not hold (it still
stores them: the product may send events before anyone writes a journey for them).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from orchestrator.journeys.yaml_files import read_mapping, validation_error

EVENTS_FILE = "events.yaml"
EventName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.:-]*$", max_length=100)]
PropertyType = Literal["string", "integer", "number", "boolean", "datetime", "object", "array"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _type_shorthand(value: Any) -> Any:
    """``score: integer`` is short for ``score: {type: integer}``."""
    return {"type": value} if isinstance(value, str) else value


class EventProperty(_Frozen):
    type: PropertyType
    description: str = ""


class CatalogueEvent(_Frozen):
    description: str = Field(
        min_length=1, description="What happened, for the people writing journeys."
    )
    properties: dict[
        Annotated[str, Field(min_length=1, max_length=100)],
        Annotated[EventProperty, BeforeValidator(_type_shorthand)],
    ] = Field(default_factory=dict)


class EventCatalogue(_Frozen):
    events: dict[EventName, CatalogueEvent] = Field(min_length=1)

    def all_events(self) -> dict[str, CatalogueEvent]:
        """The file's events and Stepmail's own."""
        return {**STEPMAIL_EVENTS, **self.events}

    def get(self, name: str) -> CatalogueEvent | None:
        return self.events.get(name) or STEPMAIL_EVENTS.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self.events) | frozenset(STEPMAIL_EVENTS)


# Emitted by Stepmail itself (refused from outside): known whether or not the file lists them.
STEPMAIL_EVENTS: Mapping[str, CatalogueEvent] = {
    "tier_changed": CatalogueEvent(
        description="The customer's touch tier changed (emitted by Stepmail).",
        properties={
            "from": EventProperty(type="string", description="the tier before"),
            "to": EventProperty(type="string", description="the tier after"),
        },
    ),
    "stage_changed": CatalogueEvent(
        description="The customer's lifecycle stage moved (emitted by Stepmail).",
        properties={
            "from": EventProperty(type="string", description="the stage before (none at signup)"),
            "to": EventProperty(type="string", description="the stage after"),
            "source": EventProperty(type="string", description="signup, rules, manual or pinned"),
        },
    ),
}
CATALOGUE_KEYS = frozenset(
    key for model in (EventCatalogue, CatalogueEvent, EventProperty) for key in model.model_fields
)


def load_catalogue(path: Path) -> EventCatalogue:
    """Parse and validate the catalogue; JourneyError names the file, line and field."""
    root, data = read_mapping(path, "the event catalogue")
    try:
        return EventCatalogue.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc, CATALOGUE_KEYS) from None


def event_catalogue(journeys_dir: Path) -> EventCatalogue | None:
    """The installation's catalogue, or None without one. Cached per file version, so an
    edited catalogue is picked up without a restart."""
    path = journeys_dir / EVENTS_FILE
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        return None
    return _cached(path.resolve(), version)


@lru_cache(maxsize=8)
def _cached(path: Path, _version: int) -> EventCatalogue:
    return load_catalogue(path)


def matches_type(value: object, expected: PropertyType) -> bool:
    """Whether a journey's literal property value can equal a value of the catalogued type."""
    if expected == "string" or expected == "datetime":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False  # an object or an array is never equal to a scalar a journey can write
