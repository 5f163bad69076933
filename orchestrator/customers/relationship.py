"""Where the relationship with a customer stands, for automation that must step aside.

Three situations make health actions and journeys entered on events leave a customer alone,
unless the action or journey lists the situation in its ``even_if``:

- ``cancelled``: the subscription was cancelled (a ``subscription_cancelled`` event, or
  ``PATCH /v1/customers/{id}`` with ``"cancelled": true``) and not reactivated since;
- ``exited``: the customer left a signup journey (the onboarding) by one of its exit events;
- ``converted``: the customer reached a journey's goal (e.g. upgraded) in the last
  :data:`JUST_CONVERTED` days: an upsell or an at-risk mail now would read as not listening.

Pure: the moments come from the customer's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Situation = Literal["cancelled", "exited", "converted"]
SITUATIONS: tuple[Situation, ...] = ("cancelled", "exited", "converted")
JUST_CONVERTED = timedelta(days=30)

# The events the product sends when a subscription ends or starts again.
CANCELLED_EVENT = "subscription_cancelled"
REACTIVATED_EVENT = "subscription_reactivated"


@dataclass(frozen=True)
class Relationship:
    cancelled_at: datetime | None = None
    exited_at: datetime | None = None
    converted_at: datetime | None = None

    def situations(self, now: datetime) -> frozenset[Situation]:
        found: set[Situation] = set()
        if self.cancelled_at is not None:
            found.add("cancelled")
        if self.exited_at is not None:
            found.add("exited")
        if self.converted_at is not None and now - self.converted_at < JUST_CONVERTED:
            found.add("converted")
        return frozenset(found)

    def in_the_way(self, even_if: Iterable[Situation], now: datetime) -> Situation | None:
        """The first situation that makes automation step aside, unless ``even_if`` excuses it."""
        excused = set(even_if)
        return next((s for s in SITUATIONS if s in self.situations(now) and s not in excused), None)


def relationship_of(row: object) -> Relationship:
    """The relationship a customer row (or anything with the three columns) describes."""
    return Relationship(
        getattr(row, "cancelled_at", None),
        getattr(row, "exited_at", None),
        getattr(row, "converted_at", None),
    )
