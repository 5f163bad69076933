"""The health score definition (``journeys/health.yaml``): pure, frozen, validated data.

A score is ``100 × Σ weightᵢ · valueᵢ / Σ weightᵢ`` where each component's value is in
[0, 1]. Bands split 0-100; entering a band fires its actions (at most once per cool-down).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.customers.relationship import Situation
from orchestrator.customers.tiers import Tier
from orchestrator.journeys.durations import Duration
from orchestrator.journeys.model import ALL_TIERS, Slug

MAX_WEIGHT = 1_000_000  # shares of the score: any ratio a definition needs


class _Frozen(BaseModel):
    # .inf or .nan in a weight, a range or a threshold is no number the score can use: an
    # infinite weight made every score NaN, and the health job died turning it into a whole
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Component(_Frozen):
    """What every component has: a name for the history and its share of the score."""

    id: Slug
    # bounded: weights are summed, and 1.7e308 + 30 is infinite (the health job died on it)
    weight: float = Field(gt=0, le=MAX_WEIGHT)


class Frequency(_Component):
    """How often ``event`` happened in the last ``within``: ``target`` times or more is 1."""

    kind: Literal["frequency"]
    event: Slug
    within: Duration
    target: int = Field(gt=0)


class Adoption(_Component):
    """The share of ``events`` (key features) seen at least once."""

    kind: Literal["adoption"]
    events: tuple[Slug, ...] = Field(min_length=1)


class Penalty(_Component):
    """Fewer is better: 1 with no ``event`` in the last ``within``, 0 at ``limit`` or more."""

    kind: Literal["penalty"]
    event: Slug
    within: Duration
    limit: int = Field(gt=0)


class Latest(_Component):
    """The latest ``event``'s ``property`` scaled from [min, max]; ``missing`` if none yet."""

    kind: Literal["latest"]
    event: Slug
    property: str = Field(min_length=1)
    min: float = 0
    max: float = 10
    missing: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self) -> Latest:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self


Component = Annotated[Frequency | Adoption | Penalty | Latest, Field(discriminator="kind")]


class MailAction(_Frozen):
    """Enter the customer in ``journey`` (trigger: manual): the mail goes through the pipeline."""

    kind: Literal["mail"]
    journey: Slug
    tiers: tuple[Tier, ...] = ALL_TIERS
    even_if: tuple[Situation, ...] = Field(
        default=(), description="Fire even for a customer who cancelled, exited or converted."
    )


class TaskAction(_Frozen):
    """Open a CSM task due in ``due`` and notify the CSM (mail, and Slack if configured)."""

    kind: Literal["csm_task"]
    due: Duration = timedelta(days=2)
    tiers: tuple[Tier, ...] = ALL_TIERS
    even_if: tuple[Situation, ...] = ()


Action = Annotated[MailAction | TaskAction, Field(discriminator="kind")]


class Band(_Frozen):
    id: Slug
    min: int = Field(ge=0, le=100, description="Lowest score in the band.")
    actions: tuple[Action, ...] = ()


class Signal(_Frozen):
    """An at-risk signal: a task for the customer's CSM when an event says so.

    Either ``property`` + ``at_most`` (e.g. an NPS of 6 or less) or ``count_at_least`` +
    ``within`` (e.g. 3 support tickets in 7 days)."""

    id: Slug
    event: Slug
    property: str | None = None
    at_most: float | None = None
    count_at_least: int | None = Field(default=None, gt=0)
    within: Duration | None = None
    tiers: tuple[Tier, ...] = ("high",)
    due: Duration = timedelta(days=1)
    even_if: tuple[Situation, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> Signal:
        by_property = self.property is not None and self.at_most is not None
        by_count = self.count_at_least is not None and self.within is not None
        if by_property == by_count:
            raise ValueError("give either property + at_most, or count_at_least + within")
        return self


class HealthDefinition(_Frozen):
    components: tuple[Component, ...] = Field(min_length=1)
    bands: tuple[Band, ...] = Field(min_length=1)
    signals: tuple[Signal, ...] = ()
    actions_after: Duration = Field(
        default=timedelta(days=14),
        description="No band actions in a customer's first days: a new account scores low.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> HealthDefinition:
        for what, ids in (
            ("component", [c.id for c in self.components]),
            ("band", [b.id for b in self.bands]),
            ("signal", [s.id for s in self.signals]),
        ):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{what} ids must be unique")
        if 0 not in {band.min for band in self.bands}:
            raise ValueError("one band must start at 0, so every score has a band")
        return self

    def band_for(self, score: int) -> Band:
        """The band with the highest ``min`` not above ``score``."""
        return max((b for b in self.bands if b.min <= score), key=lambda b: b.min)

    def band(self, band_id: str) -> Band:
        return next(b for b in self.bands if b.id == band_id)

    def input_events(self) -> frozenset[str]:
        """Events that can move the score: only these trigger a recompute on arrival."""
        names: set[str] = set()
        for component in self.components:
            names.update(component.events if isinstance(component, Adoption) else [component.event])
        return frozenset(names)

    def windows(self) -> dict[timedelta, frozenset[str]]:
        """Window length → events whose leaving (or entering) it changes a score."""
        found: dict[timedelta, set[str]] = {}
        for component in self.components:
            if isinstance(component, Frequency | Penalty):
                found.setdefault(component.within, set()).add(component.event)
        return {window: frozenset(events) for window, events in found.items()}

    def mail_journeys(self) -> set[str]:
        return {a.journey for b in self.bands for a in b.actions if isinstance(a, MailAction)}
