"""Which journey an enrollment follows. New customers enter a journey's current version;
a customer in flight follows the version their enrollment names (the latest one, or the one
they started on with ``in_flight: finish_started``).

Code that reads journeys takes a ``Mapping[str, Journey]`` (the current versions, by id). A
:class:`JourneySet` is such a mapping that also knows each journey's version id and can find
an older version; a plain dict works too, as an installation without versions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, runtime_checkable

from orchestrator.journeys.model import Journey

VersionLookup = Callable[[str, int], Journey | None]


@runtime_checkable
class VersionedJourneys(Protocol):
    """The current journeys with their version ids, and the versions enrollments follow."""

    def version_id(self, journey_id: str) -> int | None: ...

    def followed(self, journey_id: str, version_id: int | None) -> Journey | None: ...


class JourneySet(Mapping[str, Journey]):
    """The current version of each journey, by id; ``lookup`` loads another version (from the
    store, cached by the caller)."""

    def __init__(
        self,
        journeys: Mapping[str, Journey],
        version_ids: Mapping[str, int] | None = None,
        lookup: VersionLookup | None = None,
    ) -> None:
        self._journeys = dict(journeys)
        self._version_ids = dict(version_ids or {})
        self._lookup = lookup

    def __getitem__(self, journey_id: str) -> Journey:
        return self._journeys[journey_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._journeys)

    def __len__(self) -> int:
        return len(self._journeys)

    def version_id(self, journey_id: str) -> int | None:
        return self._version_ids.get(journey_id)

    def followed(self, journey_id: str, version_id: int | None) -> Journey | None:
        current = self._journeys.get(journey_id)
        if version_id is None or version_id == self._version_ids.get(journey_id):
            return current
        if self._lookup is None:
            return current
        return self._lookup(journey_id, version_id)


def is_versioned(journeys: Mapping[str, Journey]) -> bool:
    """Whether ``journeys`` knows versions: a JourneySet at once (``isinstance`` of a runtime
    protocol inspects the class on every call, ~10 µs, and this is asked per enrollment)."""
    return type(journeys) is JourneySet or isinstance(journeys, VersionedJourneys)


def current_version_id(journeys: Mapping[str, Journey], journey_id: str) -> int | None:
    """The version id new customers of ``journey_id`` start on (None: not versioned)."""
    if type(journeys) is JourneySet or isinstance(journeys, VersionedJourneys):
        return journeys.version_id(journey_id)
    return None


def followed_journey(
    journeys: Mapping[str, Journey], journey_id: str, version_id: int | None
) -> Journey | None:
    """The journey an enrollment on ``version_id`` follows (None: unversioned, the current)."""
    if type(journeys) is JourneySet or isinstance(journeys, VersionedJourneys):
        return journeys.followed(journey_id, version_id)
    return journeys.get(journey_id)
