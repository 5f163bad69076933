"""The journey model: pure, frozen data validated from YAML. Nothing here touches I/O."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from orchestrator.customers.relationship import Situation
from orchestrator.customers.tiers import Tier
from orchestrator.errors import ConditionError
from orchestrator.guards.links import check_link_values
from orchestrator.journeys.conditions import compile_condition
from orchestrator.journeys.durations import Duration
from orchestrator.journeys.send_window import parse_send_window

ALL_TIERS: tuple[Tier, ...] = ("high", "low", "tech")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]


def _valid_condition(source: str) -> str:
    try:
        compile_condition(source)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return source


ConditionSource = Annotated[str, Field(min_length=1), AfterValidator(_valid_condition)]


def _valid_send_window(text: str) -> str:
    parse_send_window(text)  # ValueError names the expected form
    return text


SendWindowText = Annotated[str, AfterValidator(_valid_send_window)]


def _check_link_vars(values: dict[str, Any]) -> dict[str, Any]:
    """A var ending in ``_url`` reaches an href: http(s) only, refused at load with its line."""
    check_link_values(values, "vars")
    return values


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- usage: events that trigger, branch, convert and end journeys -----------------------------

PropertyValue = str | int | float | bool


class EventMatch(_Frozen):
    """A product event by name, optionally with properties that must all be equal."""

    event: Slug
    properties: dict[str, PropertyValue] = Field(
        default_factory=dict, description="Properties the event must carry, e.g. {to: high}."
    )

    def matches(self, name: str, properties: dict[str, Any]) -> bool:
        return name == self.event and all(
            properties.get(key) == value for key, value in self.properties.items()
        )


def _event_ref(value: Any) -> Any:
    """``report_created`` is short for ``{event: report_created}``."""
    return {"event": value} if isinstance(value, str) else value


def _trigger_ref(value: Any) -> Any:
    if isinstance(value, list):  # any of several events
        return tuple(_event_ref(item) for item in value)
    return value if value in ("signup", "manual") else _event_ref(value)


EventRef = Annotated[
    EventMatch, BeforeValidator(_event_ref, json_schema_input_type=Slug | EventMatch)
]


class WaitFor(_Frozen):
    """After this step's due time, wait up to ``timeout`` for ``event``; then exactly one of
    ``if_seen`` (as soon as the event arrives) or ``if_timeout`` (at the timeout) is scheduled."""

    event: Slug
    timeout: Duration
    if_seen: Slug | None = Field(default=None, description="Step scheduled when the event comes.")
    if_timeout: Slug | None = Field(default=None, description="Step scheduled at the timeout.")

    @model_validator(mode="after")
    def _has_a_branch(self) -> WaitFor:
        if self.if_seen is None and self.if_timeout is None:
            raise ValueError("a wait needs if_seen, if_timeout or both")
        return self


class ReentryAfter(_Frozen):
    after: Duration = Field(description="Minimum time between two entries of one customer.")


Reentry = Literal["never", "always"] | ReentryAfter

InFlightPolicy = Literal["follow_latest", "finish_started"]
CatchUpPolicy = Literal["skip_missed", "send_first", "compress"]


def _id_list(value: Any) -> Any:
    """``renamed_from: basics`` is short for ``renamed_from: [basics]``."""
    return [value] if isinstance(value, str) else value


class Survey(_Frozen):
    """A survey the step's mail carries: ``nps`` is a one-click 0-10 scale whose links are
    signed per customer and survey (``survey`` in the template). ``id`` names the survey in
    the answers; default ``<journey>-<step>``."""

    kind: Literal["nps"] = "nps"
    id: Slug | None = None


def _survey_ref(value: Any) -> Any:
    """``survey: nps`` is short for ``survey: {kind: nps}``."""
    return {"kind": value} if isinstance(value, str) else value


class Step(_Frozen):
    """One mail of a journey, sent ``after`` the enrollment's anchor if its condition holds."""

    id: Slug = Field(description="Unique within the journey; part of the send's idempotency key.")
    after: Duration = Field(
        default=timedelta(0),
        description="Offset from enrollment, e.g. '0d', '3d', '36h'; for an `on_event` step or "
        "a branch of a wait, the delay after the event or the branch.",
    )
    template: str = Field(
        pattern=r"^[a-z0-9_/-]+$",
        description="Template name under templates/mail, without tier, locale or suffix.",
    )
    tiers: tuple[Tier, ...] = Field(default=ALL_TIERS, description="Tiers this step is for.")
    when: ConditionSource | None = Field(
        default=None, description="Jinja expression evaluated at send time; false skips the step."
    )
    description: str = ""
    transactional: bool = Field(
        default=False, description="Exempt from the frequency cap, and not counted by it."
    )
    on_event: EventRef | None = Field(
        default=None,
        description="Send `after` this event, once, when it arrives while enrolled.",
    )
    wait_for: WaitFor | None = Field(
        default=None, description="Wait for an event after this step, then branch."
    )
    survey: Annotated[
        Survey | None,
        BeforeValidator(_survey_ref, json_schema_input_type=Literal["nps"] | Survey | None),
    ] = Field(default=None, description="A survey the mail carries: nps (a one-click 0-10 scale).")
    renamed_from: Annotated[
        tuple[Slug, ...], BeforeValidator(_id_list, json_schema_input_type=Slug | list[Slug])
    ] = Field(
        default=(),
        description="The id(s) this step had before: customers in flight keep their place "
        "(pending rows move to this id, sent ones count as this step's history).",
    )
    expires_after: Duration | None = Field(
        default=None,
        description="Never sent later than this after its due time, however it was held up "
        "(an event step's event, a send window, the frequency cap); later it is missed.",
    )

    @property
    def is_timed(self) -> bool:
        """Scheduled at enrollment (not by an event): the classic drip step."""
        return self.on_event is None

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
    trigger: Annotated[
        Literal["signup", "manual"] | EventMatch | tuple[EventMatch, ...],
        BeforeValidator(
            _trigger_ref,
            json_schema_input_type=Literal["signup", "manual"]
            | Slug
            | EventMatch
            | list[Slug | EventMatch],
        ),
    ] = Field(
        default="signup",
        description="signup; manual (entered by Stepmail, e.g. health actions); an event; or a "
        "list of events (any of them enters).",
    )
    reentry: Reentry = Field(
        default="never",
        description="For event triggers: never, always, or {after: 30d} since the last entry.",
    )
    goal: EventRef | None = Field(
        default=None, description="The conversion event: ends the enrollment as converted."
    )
    exit_on_events: tuple[EventRef, ...] = Field(
        default=(), description="Events that end the enrollment as exited."
    )
    grace: Duration = Field(
        default=timedelta(hours=24),
        description="How late a step may still go out; later, it is recorded as missed.",
    )
    send_window: SendWindowText | None = Field(
        default=None,
        description="Recipient-local hours for this journey, e.g. 'Mon-Fri 09:00-18:00'; "
        "overrides STEPMAIL_SEND_WINDOW.",
    )
    quiet_days: tuple[date, ...] = Field(
        default=(), description="Dates (recipient-local) with no mail, besides STEPMAIL_QUIET_DAYS."
    )
    exit_when: tuple[ConditionSource, ...] = Field(
        default=(), description="Conditions that end the enrollment when true at send time."
    )
    even_if: tuple[Situation, ...] = Field(
        default=(),
        description="Who an event or a health action still enters, and who still gets its "
        "mails: by default nobody whose subscription was cancelled, who exited a signup "
        "journey by an exit event, or who converted in the last 30 days.",
    )
    hold_while_task: tuple[Slug, ...] = Field(
        default=("at_risk",),
        description="While a CSM task of one of these kinds is open for the customer, the "
        "journey's mails are held (a band's task is health_<band>, named by its band too).",
    )
    on_task_closed: Literal["release", "cancel"] = Field(
        default="release", description="What closing the task does to the held mails."
    )
    csm_sender_tiers: tuple[Tier, ...] = Field(
        default=("high",), description="Tiers whose mails come from the customer's CSM."
    )
    topic: dict[str, str] | Literal[False] | None = Field(
        default=None,
        description=(
            "How the unsubscribe page offers this journey as a topic: a label per language "
            "({ja: ..., en: ...}); false to not offer it (unsubscribe-all still covers it); "
            "unset to show the journey's name."
        ),
    )
    track_clicks: bool = Field(
        default=True,
        description="Links in this journey's mails go through signed redirect links that "
        "count clicks (when STEPMAIL_CLICK_TRACKING is on); false sends them as written.",
    )
    vars: Annotated[dict[str, Any], AfterValidator(_check_link_vars)] = Field(
        default_factory=dict,
        description="Constants for templates, e.g. links to guides (a key ending in _url "
        "must hold an http or https URL).",
    )
    steps: tuple[Step, ...] = Field(min_length=1)
    in_flight: InFlightPolicy = Field(
        default="follow_latest",
        description="What a change of this file does to customers already in the journey: "
        "follow_latest (added steps scheduled, removed ones cancelled, new delays applied) or "
        "finish_started (they finish on the version they started).",
    )
    catch_up: CatchUpPolicy = Field(
        default="skip_missed",
        description="A customer enrolled late (an import, a backdated signup): skip_missed "
        "(steps past the grace are missed), send_first (the first step is sent now anyway) or "
        "compress (the schedule starts now, the gaps kept).",
    )
    removed_steps: dict[Slug, Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=dict,
        description="Steps taken out on purpose, each with why: their pending rows are "
        "cancelled with that reason. A step that vanishes while rows wait for it, neither "
        "renamed nor listed here, stops the change from being applied.",
    )

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Journey:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        if isinstance(self.trigger, tuple) and not self.trigger:
            raise ValueError("trigger: a list of events needs at least one")
        _check_branches(self)
        _check_lineage(self)
        return self

    @property
    def trigger_events(self) -> tuple[EventMatch, ...]:
        """The events that enter this journey (none for signup and manual journeys)."""
        if isinstance(self.trigger, EventMatch):
            return (self.trigger,)
        return self.trigger if isinstance(self.trigger, tuple) else ()

    def survey_id(self, step: Step) -> str | None:
        """The id the answers to ``step``'s survey are stored under; None without a survey."""
        if step.survey is None:
            return None
        return step.survey.id or f"{self.id}-{step.id}"

    def holds_for(self, task_kind: str) -> bool:
        """Whether an open task of ``task_kind`` holds this journey's mails."""
        return any(task_kind in (name, f"health_{name}") for name in self.hold_while_task)

    def branch_targets(self) -> dict[str, Step]:
        """Step id → the waiting step whose branch it is; such steps are not timed."""
        return {
            target: step
            for step in self.steps
            if step.wait_for is not None
            for target in (step.wait_for.if_seen, step.wait_for.if_timeout)
            if target is not None
        }

    def scheduled_offsets(self) -> list[tuple[Step, timedelta]]:
        """The steps written at enrollment with their offset from the anchor: timed steps, and
        the timeout branch of every wait (its row is what the event branch races against)."""
        targets = self.branch_targets()
        planned = [(s, s.after) for s in self.steps if s.is_timed and s.id not in targets]
        for step in self.steps:
            wait = step.wait_for
            if wait is not None and wait.if_timeout is not None:
                branch = self.step(wait.if_timeout)
                planned.append((branch, step.after + wait.timeout + branch.after))
        return planned

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``, or the one renamed from it (a row written before the
        rename still names the old id); KeyError if the journey has none (it was removed)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        for step in self.steps:
            if step_id in step.renamed_from:
                return step
        raise KeyError(step_id)

    def first_offset(self) -> timedelta | None:
        """The offset of the first step written at enrollment (None: every step waits for an
        event): what the catch-up policies start from."""
        offsets = [offset for _, offset in self.scheduled_offsets()]
        return min(offsets) if offsets else None


def _check_branches(journey: Journey) -> None:
    """Waits point at existing steps used by no other wait; event steps and branches are not
    timed; timed steps say when they go."""
    ids = {step.id for step in journey.steps}
    targets: set[str] = set()
    for step in journey.steps:
        wait = step.wait_for
        if wait is None:
            continue
        if not step.is_timed:
            raise ValueError(f"step {step.id!r}: wait_for needs a timed step, not an on_event one")
        for target in (wait.if_seen, wait.if_timeout):
            if target is None:
                continue
            if target not in ids:
                raise ValueError(f"step {step.id!r}: wait_for names no step {target!r}")
            if target in targets or target == step.id:
                raise ValueError(f"step {target!r} is the branch of more than one wait")
            targets.add(target)
    for step in journey.steps:
        if step.id in targets and (step.on_event is not None or step.wait_for is not None):
            raise ValueError(f"step {step.id!r}: a branch of a wait cannot wait or have on_event")
        if step.is_timed and step.id not in targets and "after" not in step.model_fields_set:
            raise ValueError(f"step {step.id!r} needs `after` (or `on_event`)")


def _check_lineage(journey: Journey) -> None:
    """A step is renamed from, or removed as, an id no step of this version has, and each old
    id has one fate."""
    ids = {step.id for step in journey.steps}
    fate: dict[str, str] = {}
    for step in journey.steps:
        for old in step.renamed_from:
            if old in ids:
                raise ValueError(f"step {step.id!r}: renamed_from {old!r}, which is still a step")
            if old in fate:
                raise ValueError(f"{old!r} is renamed to both {fate[old]!r} and {step.id!r}")
            fate[old] = step.id
    for old in journey.removed_steps:
        if old in ids:
            raise ValueError(f"removed_steps: {old!r} is still a step")
        if old in fate:
            raise ValueError(f"removed_steps: {old!r} is also renamed to {fate[old]!r}")
