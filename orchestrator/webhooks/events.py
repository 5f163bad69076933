"""The events an endpoint can subscribe to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from orchestrator.errors import InvalidInput

EventType = Literal[
    "mail.sent",
    "mail.delivered",
    "mail.bounced",
    "recipient.unsubscribed",
    "enrollment.converted",
    "enrollment.exited",
    "task.opened",
    "task.closed",
    "health.band_changed",
    "tier.changed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def parse_events(names: Iterable[str]) -> tuple[str, ...]:
    """Known event names, in our order, each once; ``*`` means all of them."""
    chosen: set[str] = set()
    for raw in names:
        for name in raw.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "*":
                chosen.update(EVENT_TYPES)
            elif name in EVENT_TYPES:
                chosen.add(name)
            else:
                raise InvalidInput(
                    f"events: unknown event {name[:60]!r} (known: {', '.join(EVENT_TYPES)}, or *)"
                )
    if not chosen:
        raise InvalidInput("events: name at least one event (or *)")
    return tuple(name for name in EVENT_TYPES if name in chosen)


def stored(events: Iterable[str]) -> str:
    """The column's form: ``,a,b,`` (a LIKE on ``%,a,%`` matches one whole name)."""
    return "," + ",".join(events) + ","


def listed(column: str) -> list[str]:
    return [name for name in column.split(",") if name]
