"""What step conditions can ask about a customer's usage, read lazily at send time.

A condition such as ``usage.count('login', within='14d') >= 3`` calls a method of the
:class:`UsageFacts` passed into the sandbox. Each distinct question is one indexed query
(``usage_event (customer_id, name, occurred_at)``), asked only if the condition asks it, and
answered once per send, unless it came answered already: a batch of sends and the lifecycle
rules answer their literal questions for all their customers at once
(:mod:`orchestrator.usage.prefetch`). Attributes starting with ``_`` are out of the sandbox's
reach, so a journey file cannot get at the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, column, func, literal, select, text

from orchestrator.db.planning import PLAN_EACH_TIME
from orchestrator.db.tables import customers, usage_events
from orchestrator.journeys.durations import parse_duration
from orchestrator.usage.latest_sql import latest_properties_sql

_E = usage_events
_T = TypeVar("_T")


class UsageFacts:
    """Read-only questions about one customer's events, as of ``now``."""

    def __init__(
        self,
        engine: Engine | Connection,
        customer_id: int,
        now: datetime,
        known: Mapping[tuple[object, ...], object] | None = None,
    ) -> None:
        self._engine = engine  # a Connection: read inside the caller's transaction
        self._customer_id = customer_id
        self._now = now
        # answers asked for many customers at once (usage/prefetch.py), as of the same now
        self._answers: dict[tuple[object, ...], object] = dict(known or {})

    def count(self, name: str, within: str | None = None) -> int:
        """How many ``name`` events, ever or in the last ``within`` (e.g. ``'14d'``)."""
        return int(
            self._ask(("count", name, within), lambda: self._scalar(self._count(name, within)))
        )

    def seen(self, name: str, within: str | None = None) -> bool:
        """Whether ``name`` happened, ever or in the last ``within``: the first such event
        found answers it, however many there are (the count, if known already, answers too)."""
        counted = self._answers.get(("count", name, within))
        if isinstance(counted, int):
            return counted > 0
        return bool(
            self._ask(("seen", name, within), lambda: self._scalar(self._seen(name, within)))
        )

    def weeks_with(self, name: str, weeks: int = 4) -> int:
        """In how many of the last ``weeks`` weeks (7-day windows back from now, at most 26)
        ``name`` happened: "the key feature in most weeks" is ``weeks_with('x', 4) >= 3``."""
        if not 1 <= weeks <= 26:
            raise ValueError(f"weeks={weeks}: 1 to 26")

        def answer() -> int:
            found = 0
            for week in range(weeks):
                end = self._now - timedelta(days=7 * week)
                query = (
                    select(func.count())
                    .select_from(_E)
                    .where(
                        _E.c.customer_id == self._customer_id,
                        _E.c.name == name,
                        _E.c.occurred_at <= end,
                        _E.c.occurred_at > end - timedelta(days=7),
                    )
                )
                found += bool(self._scalar(query))
            return found

        return self._ask(("weeks_with", name, weeks), answer)

    def first(self, name: str) -> datetime | None:
        """When ``name`` first happened, or None."""
        query = self._where(select(func.min(_E.c.occurred_at)), name)
        return self._moment(("first", name), query)

    def last(self, name: str) -> datetime | None:
        query = self._where(select(func.max(_E.c.occurred_at)), name)
        return self._moment(("last", name), query)

    def days_since(self, name: str) -> int | None:
        """Whole days since the latest ``name`` event; None if it never happened."""
        last = self.last(name)
        return None if last is None else max(0, (self._now - last).days)

    def property(self, name: str, key: str, default: Any = None) -> Any:
        """``key`` of the latest ``name`` event's properties (e.g. the last NPS score)."""
        properties = self._ask(("property", name), lambda: self._latest_properties(name)) or {}
        return properties.get(key, default)

    def _latest_properties(self, name: str) -> Any:
        if self._engine.dialect.name == "postgresql":  # see _LATEST_PROPERTIES
            query: Any = _LATEST_PROPERTIES.bindparams(
                customer_id=self._customer_id, name=name, now=self._now
            )
        else:
            query = (
                self._where(select(_E.c.properties), name)
                .order_by(_E.c.occurred_at.desc(), _E.c.id.desc())
                .limit(1)
            )
        return self._scalar(query)

    def _count(self, name: str, within: str | None) -> Select[Any]:
        query = self._where(select(func.count()).select_from(_E), name)
        if within is not None:
            query = query.where(_E.c.occurred_at > self._now - _window(within))
        return query

    def _seen(self, name: str, within: str | None) -> Select[Any]:
        query = self._where(select(literal(True)).select_from(_E), name).limit(1)
        if within is not None:
            query = query.where(_E.c.occurred_at > self._now - _window(within))
        return query

    def _where(self, query: Select[Any], name: str) -> Select[Any]:
        return query.where(
            _E.c.customer_id == self._customer_id,
            _E.c.name == name,
            _E.c.occurred_at <= self._now,
        )

    def _moment(self, key: tuple[object, ...], query: Select[Any]) -> datetime | None:
        moment: datetime | None = self._ask(key, lambda: self._scalar(query))
        return moment

    def _scalar(self, query: Select[Any]) -> Any:
        return _scalar(self._engine, query)

    def _ask(self, key: tuple[object, ...], answer: Callable[[], _T]) -> _T:
        if key not in self._answers:
            self._answers[key] = answer()
        return self._answers[key]  # type: ignore[return-value]


_LATEST_PROPERTIES = text(  # usage/latest_sql.py
    latest_properties_sql(
        "CAST(:customer_id AS integer)", "CAST(:name AS varchar)", "CAST(:now AS timestamptz)"
    )
).columns(column("properties", _E.c.properties.type))


def _scalar(source: Engine | Connection, query: Any) -> Any:
    # Planned for its own customer each time on PostgreSQL, as the batch's probes are: a plan
    # kept from when usage_event was small would scan the whole table (db/planning.py).
    query = query.execution_options(**PLAN_EACH_TIME)
    if isinstance(source, Connection):
        return source.execute(query).scalar()
    with source.connect() as connection:
        return connection.execute(query).scalar()


class HealthFacts:
    """The customer's latest health score and band (None before the first score)."""

    def __init__(
        self,
        engine: Engine | Connection,
        customer_id: int,
        known: tuple[int | None, str | None] | None = None,
    ) -> None:
        self._engine = engine
        self._customer_id = customer_id
        self._row = known  # the score and band when the caller has just read them

    @property
    def score(self) -> int | None:
        return self._load()[0]

    @property
    def band(self) -> str | None:
        return self._load()[1]

    def _load(self) -> tuple[int | None, str | None]:
        if self._row is None:
            query = select(customers.c.health_score, customers.c.health_band).where(
                customers.c.id == self._customer_id
            )
            if isinstance(self._engine, Connection):
                row = self._engine.execute(query).one()
            else:
                with self._engine.connect() as connection:
                    row = connection.execute(query).one()
            self._row = (row.health_score, row.health_band)
        return self._row


def usage_context(
    engine: Engine | Connection,
    customer_id: int,
    enrolled_at: datetime,
    now: datetime,
    *,
    health: tuple[int | None, str | None] | None = None,
    answers: Mapping[tuple[object, ...], object] | None = None,
) -> dict[str, object]:
    """The usage names conditions see besides the customer's (see journeys/README.md);
    ``health``: the customer's score and band, when the caller has just read them;
    ``answers``: usage questions already answered (:mod:`orchestrator.usage.prefetch`)."""
    return {
        "usage": UsageFacts(engine, customer_id, now, answers),
        "health": HealthFacts(engine, customer_id, health),
        "days_since_enrollment": max(0, (now - enrolled_at).days),
    }


def _window(within: str) -> timedelta:
    try:
        return parse_duration(within)
    except ValueError as exc:
        raise ValueError(f"within={within!r}: {exc}") from None
