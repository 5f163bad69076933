"""What a new version of a journey does to the customers already in it: pure functions of
(old version, new version, a summary of the rows in flight, now).

``stepmail plan`` prints the plan; applying a version (:mod:`orchestrator.versions.apply`)
carries out the very same plan, computed by the same functions inside the transaction that
applies it, so the plan shown is what applying does.

The policy for customers in flight is the new version's ``in_flight``:

- ``follow_latest`` (the default): every enrollment moves to the new version, matched by
  step id. A step renamed (``renamed_from``) keeps its rows: the ones still waiting move to the
  new id, sent ones stay as its history. An added step is written for every enrollment whose
  time for it is not past the grace (later than that it is recorded as ``missed``). A changed
  delay reschedules the rows still waiting (to ``missed`` when the new time is past the
  grace). A step listed in ``removed_steps`` has its waiting rows cancelled with the reason
  and the version. A changed condition, tier list or template applies when the row is sent.
- ``finish_started``: enrollments keep the version they follow; new ones start on the new one.

A step that vanishes while rows wait for it, neither renamed nor listed in
``removed_steps``, *blocks* the change: nothing is applied, the journey stays on its version,
and the plan, ``stepmail plan`` and the log name the step. Nothing is cancelled silently.

Enrollments from before versions were recorded have no version; they adopt the first one
applied as it is (their rows are renamed and removed by id, never rescheduled or added to).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.journeys.durations import format_duration
from orchestrator.journeys.model import Journey, Step

# Journey fields whose change applies when a step is sent (no row moves for them).
_SETTINGS = (
    "name",
    "trigger",
    "reentry",
    "goal",
    "exit_on_events",
    "exit_when",
    "grace",
    "send_window",
    "quiet_days",
    "csm_sender_tiers",
    "topic",
    "vars",
    "catch_up",
    "in_flight",
)
# Step fields whose change applies when the step is sent.
_AT_SEND_TIME = ("when", "tiers", "template", "transactional", "expires_after", "wait_for")


# -- the diff: old version → new version, by step id ---------------------------------------


@dataclass(frozen=True)
class JourneyDiff:
    """How two versions differ, step by step (ids are the new version's unless said)."""

    renamed: tuple[tuple[str, str], ...] = ()  # (old id, new id)
    removed: tuple[tuple[str, str], ...] = ()  # (old id, the author's reason)
    vanished: tuple[str, ...] = ()  # old ids neither renamed nor removed
    added: tuple[tuple[str, timedelta], ...] = ()  # newly written at enrollment, with offset
    retimed: tuple[tuple[str, timedelta, timedelta], ...] = ()  # (id, old offset, new offset)
    unscheduled: tuple[str, ...] = ()  # old ids written at enrollment before, no longer
    at_send_time: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (id, what changed)
    settings: tuple[str, ...] = ()  # journey fields (and shared layouts) that changed

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.renamed,
                self.removed,
                self.vanished,
                self.added,
                self.retimed,
                self.unscheduled,
                self.at_send_time,
                self.settings,
            )
        )


def diff_versions(
    old: Journey | None,
    new: Journey,
    *,
    old_templates: Mapping[str, str] | None = None,
    new_templates: Mapping[str, str] | None = None,
    present: Collection[str] = (),
) -> JourneyDiff:
    """The difference between two versions. ``*_templates`` are template file hashes by name
    (a changed text is a change at send time). ``old=None`` is the baseline: enrollments from
    before versions, whose old step ids are only known as ``present`` (the ids their rows
    carry); only renames, removals and vanished ids are found for them."""
    old_ids = sorted({s.id for s in old.steps} | set(present)) if old else sorted(present)
    successor = _successors(new)
    renamed = tuple(
        (old_id, successor[old_id])
        for old_id in old_ids
        if old_id in successor and successor[old_id] != old_id
    )
    removed = tuple(
        (old_id, new.removed_steps[old_id])
        for old_id in old_ids
        if old_id not in successor and old_id in new.removed_steps
    )
    vanished = tuple(
        old_id for old_id in old_ids if old_id not in successor and old_id not in new.removed_steps
    )
    if old is None:
        return JourneyDiff(renamed=renamed, removed=removed, vanished=vanished)
    old_offsets = {step.id: offset for step, offset in old.scheduled_offsets()}
    new_offsets = {step.id: offset for step, offset in new.scheduled_offsets()}
    sources = {step.id: _source(step, old) for step in new.steps}
    added = tuple(
        (step_id, offset)
        for step_id, offset in new_offsets.items()
        if sources[step_id] not in old_offsets
    )
    retimed = tuple(
        (step_id, old_offsets[source], offset)
        for step_id, offset in new_offsets.items()
        if (source := sources[step_id]) in old_offsets and old_offsets[source] != offset
    )
    unscheduled = tuple(
        old_id
        for old_id in old_offsets
        if old_id in successor and successor[old_id] not in new_offsets
    )
    own = _template_changes(new, old_templates or {}, new_templates or {})
    at_send_time = tuple(
        (step.id, what)
        for step in new.steps
        if (source := sources[step.id]) is not None
        and (what := _step_changes(old.step(source), step) + own.get(step.id, ()))
    )
    settings = tuple(name for name in _SETTINGS if getattr(old, name) != getattr(new, name))
    if _shared_templates(old_templates or {}, old) != _shared_templates(new_templates or {}, new):
        settings += ("layouts",)
    return JourneyDiff(
        renamed, removed, vanished, added, retimed, unscheduled, at_send_time, settings
    )


def _successors(journey: Journey) -> dict[str, str]:
    """Every id a step of ``journey`` answers to (its own and the ones it was renamed from)."""
    found: dict[str, str] = {}
    for step in journey.steps:
        found[step.id] = step.id
        for old_id in step.renamed_from:
            found.setdefault(old_id, step.id)
    return found


def _source(step: Step, old: Journey) -> str | None:
    """The id this step had in ``old`` (itself, or what it was renamed from), if any."""
    old_ids = {s.id for s in old.steps}
    if step.id in old_ids:
        return step.id
    return next((old_id for old_id in step.renamed_from if old_id in old_ids), None)


def _step_changes(old: Step, new: Step) -> tuple[str, ...]:
    changed = tuple(name for name in _AT_SEND_TIME if getattr(old, name) != getattr(new, name))
    if old.is_timed != new.is_timed or old.on_event != new.on_event:
        changed += ("trigger",)
    return tuple("condition" if name == "when" else name for name in changed)


def _template_changes(
    new: Journey, old_templates: Mapping[str, str], new_templates: Mapping[str, str]
) -> dict[str, tuple[str, ...]]:
    """Steps whose own template files (``<template>.*``) changed text."""
    found: dict[str, tuple[str, ...]] = {}
    for step in new.steps:
        prefix = f"{step.template}."
        before = {k: v for k, v in old_templates.items() if k.startswith(prefix)}
        after = {k: v for k, v in new_templates.items() if k.startswith(prefix)}
        if before and before != after:
            found[step.id] = ("template text",)
    return found


def _shared_templates(templates: Mapping[str, str], journey: Journey) -> dict[str, str]:
    """Layouts, macros and the stylesheet: files no step names as its own."""
    own = tuple(f"{step.template}." for step in journey.steps)
    return {k: v for k, v in templates.items() if not k.startswith(own)}


# -- what is in flight ------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRows:
    """One step's rows among a group's enrollments, by what a change may do to them.

    ``fresh`` rows wait and were never tried (``pending``/``dispatched``, no attempt): they
    can be moved, rescheduled or cancelled. ``retrying`` ones wait after a failed try (they
    keep their id and their time, and can be cancelled). ``in_hand`` ones are with a worker.
    ``fresh_anchors`` and ``anchors`` (every enrollment with a row of this step) are the
    enrollments' anchors, sorted, read only for the steps whose change depends on them.
    """

    fresh: int = 0
    retrying: int = 0
    in_hand: int = 0
    sent: int = 0
    ended: int = 0
    fresh_anchors: tuple[datetime, ...] = ()
    anchors: tuple[datetime, ...] = ()

    @property
    def waiting(self) -> int:
        return self.fresh + self.retrying


@dataclass(frozen=True)
class InFlightGroup:
    """The active enrollments of a journey that follow one version (None: none recorded)."""

    version_id: int | None
    enrollments: int
    steps: Mapping[str, StepRows] = field(default_factory=dict)
    anchors: tuple[datetime, ...] = ()  # every enrollment's, sorted; read when a step is added

    def rows(self, step_id: str) -> StepRows:
        return self.steps.get(step_id, StepRows())


def steps_needing_anchors(diff: JourneyDiff) -> tuple[set[str], bool]:
    """Which steps' anchors the summary must hold for this diff (rescheduled and added ones),
    and whether every enrollment's anchor is needed (a step was added)."""
    retimed = {step_id for step_id, _, _ in diff.retimed}
    renamed = {old for old, new in diff.renamed if new in retimed}  # moved first, then re-timed
    steps = retimed | renamed | {step_id for step_id, _ in diff.added}
    return steps, bool(diff.added)


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rename:
    old_id: str
    new_id: str
    rows: int  # fresh rows that move to the new id
    staying: int  # retrying or in-hand rows: they keep the old id, found by renamed_from
    history: int  # sent rows: the step's history


@dataclass(frozen=True)
class Cancel:
    step_id: str
    rows: int
    reason: str
    kind: str = "removed"  # or "unscheduled": now sent on an event, or a branch of a wait


@dataclass(frozen=True)
class Reschedule:
    step_id: str
    old_offset: timedelta
    new_offset: timedelta
    rows: int  # fresh rows rescheduled
    missed: int  # of which the new time is already past the grace: recorded as missed
    cutoff: datetime  # rows of enrollments anchored before this become missed
    reason: str
    missed_reason: str


@dataclass(frozen=True)
class Add:
    step_id: str
    offset: timedelta
    scheduled: int  # enrollments that will get it
    past: int  # enrollments already past it: a missed row is written
    cutoff: datetime  # enrollments anchored at or after this are scheduled
    missed_reason: str


@dataclass(frozen=True)
class Vanished:
    step_id: str
    rows: int  # rows waiting for it


@dataclass(frozen=True)
class AtSendTime:
    step_id: str
    what: tuple[str, ...]
    rows: int  # waiting rows that will see the change


@dataclass(frozen=True)
class GroupPlan:
    """What happens to the enrollments that follow one version."""

    version_id: int | None
    enrollments: int
    moves: bool  # they follow the new version from now on
    renames: tuple[Rename, ...] = ()
    cancels: tuple[Cancel, ...] = ()
    reschedules: tuple[Reschedule, ...] = ()
    adds: tuple[Add, ...] = ()
    vanished: tuple[Vanished, ...] = ()
    at_send_time: tuple[AtSendTime, ...] = ()
    settings: tuple[str, ...] = ()

    @property
    def changes_rows(self) -> bool:
        return any(
            (
                any(r.rows for r in self.renames),
                any(c.rows for c in self.cancels),
                any(r.rows for r in self.reschedules),
                any(a.scheduled or a.past for a in self.adds),
            )
        )

    @property
    def changes_anything(self) -> bool:
        """Customers in this group get something else than before."""
        if not self.moves or not self.enrollments:
            return False
        return (
            self.changes_rows
            or any(a.rows for a in self.at_send_time)
            or any(v.rows for v in self.vanished)
            or bool(self.settings)
        )


@dataclass(frozen=True)
class JourneyPlan:
    """The change from the current version to a new one, for every group in flight."""

    journey_id: str
    policy: str  # the new version's in_flight
    first: bool  # no version was applied before: the baseline
    groups: tuple[GroupPlan, ...]
    diff_empty: bool = False  # the versions differ only in text that changes nothing

    @property
    def blocking(self) -> tuple[Vanished, ...]:
        """Vanished steps with rows waiting, in a group that moves: the change is not applied.
        The first version is never blocked (there is nothing to stay on)."""
        if self.first:
            return ()
        return tuple(
            v
            for g in self.groups
            if g.moves and g.version_id is not None
            for v in g.vanished
            if v.rows
        )

    @property
    def changes_in_flight(self) -> bool:
        return any(group.changes_anything for group in self.groups)


def plan_group(
    diff: JourneyDiff,
    group: InFlightGroup,
    new: Journey,
    number: int,
    now: datetime,
    *,
    moves: bool,
) -> GroupPlan:
    """What applying ``new`` (version ``number``) does to one group, in numbers."""
    if not moves:
        return GroupPlan(group.version_id, group.enrollments, moves=False)
    version = f"version {number}"
    renames = tuple(
        Rename(
            old_id,
            new_id,
            group.rows(old_id).fresh,
            group.rows(old_id).retrying + group.rows(old_id).in_hand,
            group.rows(old_id).sent,
        )
        for old_id, new_id in diff.renamed
    )
    cancels = tuple(
        Cancel(step_id, group.rows(step_id).waiting, f"removed in {version}: {reason}")
        for step_id, reason in diff.removed
    ) + tuple(
        Cancel(
            step_id,
            group.rows(step_id).waiting,
            f"no longer scheduled in {version}: {_now_waits_for(new, step_id)}",
            "unscheduled",
        )
        for step_id in diff.unscheduled
    )
    reschedules = tuple(_reschedule(group, new, s, o, n, version, now) for s, o, n in diff.retimed)
    adds = tuple(_add(group, new, step_id, offset, version, now) for step_id, offset in diff.added)
    vanished = tuple(Vanished(step_id, group.rows(step_id).waiting) for step_id in diff.vanished)
    at_send_time = tuple(
        AtSendTime(step_id, what, _waiting_under(group, new, step_id))
        for step_id, what in diff.at_send_time
    )
    return GroupPlan(
        group.version_id,
        group.enrollments,
        True,
        renames,
        cancels,
        reschedules,
        adds,
        vanished,
        at_send_time,
        diff.settings,
    )


def _waiting_under(group: InFlightGroup, new: Journey, step_id: str) -> int:
    """Rows waiting for a step, under its new id or any it was renamed from."""
    ids = [step_id, *new.step(step_id).renamed_from]
    return sum(group.rows(i).waiting for i in ids)


def _now_waits_for(new: Journey, old_id: str) -> str:
    step = new.step(old_id)
    if step.on_event is not None:
        return f"{step.id} is sent on {step.on_event.event}"
    return f"{step.id} is a branch of a wait"


def cutoff_for(journey: Journey, step: Step, offset: timedelta, now: datetime) -> datetime:
    """Enrollments anchored at or after this moment are still in time for a step at
    ``offset``: its time is not past the grace (nor its own expiry)."""
    limit = journey.grace
    if step.expires_after is not None:
        limit = min(limit, step.expires_after)
    return now - limit - offset


def _reschedule(
    group: InFlightGroup,
    new: Journey,
    step_id: str,
    old: timedelta,
    offset: timedelta,
    version: str,
    now: datetime,
) -> Reschedule:
    # Renames are applied first: the rows of the ids this step was renamed from are its own.
    ids = [step_id, *new.step(step_id).renamed_from]
    fresh = sum(group.rows(i).fresh for i in ids)
    anchors = sorted(anchor for i in ids for anchor in group.rows(i).fresh_anchors)
    cutoff = cutoff_for(new, new.step(step_id), offset, now)
    missed = bisect_left(anchors, cutoff)
    change = f"{format_duration(old)} → {format_duration(offset)}"
    return Reschedule(
        step_id,
        old,
        offset,
        fresh,
        missed,
        cutoff,
        f"rescheduled by {version}: {change}",
        f"rescheduled by {version} ({change}) to a time past the grace",
    )


def _add(
    group: InFlightGroup,
    new: Journey,
    step_id: str,
    offset: timedelta,
    version: str,
    now: datetime,
) -> Add:
    rows = group.rows(step_id)
    cutoff = cutoff_for(new, new.step(step_id), offset, now)
    past = bisect_left(group.anchors, cutoff) - bisect_left(rows.anchors, cutoff)
    lacking = len(group.anchors) - len(rows.anchors)
    return Add(
        step_id,
        offset,
        lacking - past,
        past,
        cutoff,
        f"added in {version} after its time had passed (grace {format_duration(new.grace)})",
    )


def plan_change(
    journey_id: str,
    new: Journey,
    number: int,
    groups: Iterable[tuple[InFlightGroup, JourneyDiff]],
    now: datetime,
    *,
    first: bool,
    diff_empty: bool = False,
) -> JourneyPlan:
    """The plan for every group in flight, each with its diff from the version it follows.
    Under ``finish_started`` only enrollments without a version move (they have nothing to
    finish on)."""
    follow = new.in_flight == "follow_latest"
    planned = tuple(
        plan_group(diff, group, new, number, now, moves=follow or group.version_id is None)
        for group, diff in groups
    )
    return JourneyPlan(journey_id, new.in_flight, first, planned, diff_empty)


# -- how a plan reads ------------------------------------------------------------------------


def describe_group(group: GroupPlan, labels: Mapping[int, str]) -> list[str]:
    """One line per effect, in the words of ``stepmail plan``."""
    who = labels.get(group.version_id, "no version") if group.version_id else "no version"
    if not group.moves:
        return [
            f"{group.enrollments} enrollment(s) on {who} finish on it (in_flight: finish_started)"
        ]
    lines = [f"{group.enrollments} enrollment(s) on {who} follow the new version"]
    for r in group.renames:
        lines.append(
            f"renamed: {r.old_id} → {r.new_id}, {r.rows} pending row(s) move"
            + (f", {r.history} sent stay as its history" if r.history else "")
            + (f", {r.staying} being retried or sent keep the old id" if r.staying else "")
        )
    for s in group.reschedules:
        line = (
            f"{s.step_id}: {format_duration(s.old_offset)} → {format_duration(s.new_offset)}, "
            f"{s.rows} pending row(s) rescheduled"
        )
        lines.append(
            line + (f", {s.missed} of them now past the grace (missed)" if s.missed else "")
        )
    for a in group.adds:
        lines.append(
            f"new step {a.step_id} at {format_duration(a.offset)}: {a.scheduled} enrollment(s) "
            f"will get it, {a.past} are past it"
        )
    for c in group.cancels:
        lines.append(f"{c.kind}: {c.step_id}, {c.rows} pending row(s) cancelled")
    for v in group.vanished:
        if v.rows:
            lines.append(
                f"VANISHED: {v.step_id}, {v.rows} pending row(s) wait for it: add "
                f"`renamed_from: {v.step_id}` to the step that replaces it, or list it under "
                f"`removed_steps:` with the reason"
            )
        else:
            lines.append(f"removed: {v.step_id} (no row waits for it)")
    for t in group.at_send_time:
        lines.append(
            f"{t.step_id}: {', '.join(t.what)} changed, applies when sent ({t.rows} pending row(s))"
        )
    if group.settings:
        lines.append(f"journey settings changed ({', '.join(group.settings)}): apply when sent")
    return lines


def plan_as_json(plan: JourneyPlan, labels: Mapping[int, str]) -> dict[str, Any]:
    def label(version_id: int | None) -> str | None:
        return labels.get(version_id) if version_id is not None else None

    return {
        "journey": plan.journey_id,
        "in_flight": plan.policy,
        "first_version": plan.first,
        "changes_in_flight": plan.changes_in_flight,
        "blocked": [{"step": v.step_id, "pending_rows": v.rows} for v in plan.blocking],
        "groups": [
            {
                "version_id": g.version_id,
                "version": label(g.version_id),
                "enrollments": g.enrollments,
                "moves": g.moves,
                "renamed": [
                    {
                        "from": r.old_id,
                        "to": r.new_id,
                        "pending_rows": r.rows,
                        "sent": r.history,
                        "staying": r.staying,
                    }
                    for r in g.renames
                ],
                "rescheduled": [
                    {
                        "step": s.step_id,
                        "from": format_duration(s.old_offset),
                        "to": format_duration(s.new_offset),
                        "pending_rows": s.rows,
                        "now_missed": s.missed,
                    }
                    for s in g.reschedules
                ],
                "added": [
                    {
                        "step": a.step_id,
                        "after": format_duration(a.offset),
                        "will_get_it": a.scheduled,
                        "past_it": a.past,
                    }
                    for a in g.adds
                ],
                "cancelled": [
                    {"step": c.step_id, "pending_rows": c.rows, "reason": c.reason}
                    for c in g.cancels
                ],
                "vanished": [{"step": v.step_id, "pending_rows": v.rows} for v in g.vanished],
                "at_send_time": [
                    {"step": t.step_id, "changed": list(t.what), "pending_rows": t.rows}
                    for t in g.at_send_time
                ],
                "settings_changed": list(g.settings),
            }
            for g in plan.groups
        ],
    }


def diff_groups(
    groups: Sequence[InFlightGroup], diffs: Mapping[int | None, JourneyDiff]
) -> list[tuple[InFlightGroup, JourneyDiff]]:
    return [(group, diffs[group.version_id]) for group in groups]
