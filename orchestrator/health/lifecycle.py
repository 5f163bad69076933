"""``journeys/lifecycle.yaml``: the lifecycle stages, in order, and the rule that moves a
customer into each; checked by ``stepmail check`` (errors name the file, line and field).

A stage's ``when`` is a condition like a step's (``usage``, ``health``, ``customer``,
``tier``, ``days_since_signup``...). The first stage has none: a customer enters it at signup.
Rules only move a customer forward: they put them in the furthest stage whose ``when`` holds,
if that is past where they are; falling usage shows in the health score, not as a step back
(a CSM can set any stage by hand). A stage set by hand is kept until the rules reach a later
one; a pinned stage is never moved by the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.journeys.model import ConditionSource, Slug
from orchestrator.journeys.yaml_files import (
    load_problems,
    read_mapping,
    read_when_changed,
    validation_error,
)

LIFECYCLE_FILE = "lifecycle.yaml"
StageSource = Literal["signup", "rules", "manual", "pinned"]
STAGE_CHANGED = "stage_changed"  # the event a move records: {from, to, source}


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    label: dict[str, str] = Field(description="The stage's name per language (ja and en).")
    description: str = ""
    when: ConditionSource | None = Field(
        default=None, description="Moves a customer here when true (none for the first stage)."
    )

    def name(self, language: str) -> str:
        return self.label.get(language) or self.label.get("en") or self.id


class Lifecycle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _well_formed(self) -> Lifecycle:
        ids = [stage.id for stage in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stages: an id is used twice")
        if self.stages[0].when is not None:
            raise ValueError("stages: the first stage is where a customer starts; it has no when")
        if any(stage.when is None for stage in self.stages[1:]):
            raise ValueError("stages: every stage after the first needs a when")
        for stage in self.stages:
            if len(stage.id) > 40:
                raise ValueError(f"stages: {stage.id}: at most 40 characters")
            if not {"ja", "en"} <= set(stage.label):
                raise ValueError(f"stages: {stage.id}: label needs ja and en")
        return self

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def rank(self, stage_id: str | None) -> int:
        """The stage's place in the order; -1 for none or an unknown one (a removed stage)."""
        return next((i for i, stage in enumerate(self.stages) if stage.id == stage_id), -1)

    def get(self, stage_id: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.id == stage_id), None)


def load_lifecycle(path: Path) -> Lifecycle:
    root, data = read_mapping(path, "the lifecycle file")
    try:
        return Lifecycle.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc) from None


def lifecycle_definition(journeys_dir: Path) -> Lifecycle | None:
    """The installation's stages, or None without a lifecycle file (no stages at all).
    Cached per file version, so a deploy that changes the file is picked up."""
    return _read_lifecycle(journeys_dir / LIFECYCLE_FILE)


_read_lifecycle = read_when_changed(load_lifecycle)


def lifecycle_problems(journeys_dir: Path) -> list[str]:
    """For ``stepmail check``: a broken lifecycle file."""
    return load_problems(journeys_dir / LIFECYCLE_FILE, load_lifecycle)
