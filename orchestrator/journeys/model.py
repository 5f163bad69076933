"""The journey model: pure, frozen data validated from YAML. Nothing here touches I/O."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import compile_condition
from orchestrator.journeys.durations import Duration
from orchestrator.tiers import Tier

ALL_TIERS: tuple[Tier, ...] = ("high", "low", "tech")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]


def _valid_condition(source: str) -> str:
    try:
        compile_condition(source)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return source


ConditionSource = Annotated[str, Field(min_length=1), AfterValidator(_valid_condition)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Frozen):
    """One mail of a journey, sent ``after`` the enrollment's anchor if its condition holds."""

    id: Slug = Field(description="Unique within the journey; part of the send's idempotency key.")
    after: Duration = Field(description="Offset from enrollment, e.g. '0d', '3d', '36h'.")
    template: str = Field(
        pattern=r"^[a-z0-9_/-]+$",
        description="Template name under templates/mail, without tier, locale or suffix.",
    )
    tiers: tuple[Tier, ...] = Field(default=ALL_TIERS, description="Tiers this step is for.")
    when: ConditionSource | None = Field(
        default=None, description="Jinja expression evaluated at send time; false skips the step."
    )
    description: str = ""

    @field_validator("tiers")
    @classmethod
    def _tiers_not_empty(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError("a step must be for at least one tier")
        return tiers


class Journey(_Frozen):
    """A named sequence of steps entered on a trigger, with a catch-up grace and exit rules."""

    id: Slug
    name: str = Field(min_length=1)
    description: str = ""
    trigger: Literal["signup"] = "signup"
    grace: Duration = Field(
        default=timedelta(hours=24),
        description="How late a step may still go out; later, it is recorded as missed.",
    )
    exit_when: tuple[ConditionSource, ...] = Field(
        default=(), description="Conditions that end the enrollment when true at send time."
    )
    csm_sender_tiers: tuple[Tier, ...] = Field(
        default=("high",), description="Tiers whose mails come from the customer's CSM."
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Constants for templates, e.g. links to guides."
    )
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Journey:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``; KeyError if the journey has none (e.g. it was removed)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
