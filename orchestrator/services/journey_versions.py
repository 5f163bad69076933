"""Journey versions: record a journey content when first seen, apply it to the customers in
flight (once, whichever process gets there first), plan a change without applying it, and
read versions back (``stepmail plan``, the console's journey page, the process catalogue).

Applying (:func:`sync_journey`) is one transaction under the journey's change lock
(:func:`orchestrator.versions.store.lock_current`): the content is stored if new, and if it is
not current yet the plan is computed from what is in flight *in that transaction* and carried
out, and the version is made current and marked applied. A second process with the same
files waits for the lock and finds the version current: it applies nothing. ``stepmail plan``
computes the very same plan (:func:`plan_changes`, same functions, read-only).

A content that was current once and was replaced is never made current again on its own: a
process still holding it is taken for a stale copy (a process of the previous release during
a rolling deploy). To go back to an earlier content on purpose, change the file (a comment
saying why is enough): that is a new version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from orchestrator.analytics.rollups import version_starts
from orchestrator.clock import Clock
from orchestrator.errors import JourneyError
from orchestrator.journeys.changes import (
    JourneyPlan,
    describe_group,
    diff_versions,
    plan_as_json,
    plan_change,
    steps_needing_anchors,
)
from orchestrator.journeys.loader import parse_journey
from orchestrator.journeys.model import Journey
from orchestrator.journeys.versions import JourneyContent, VersionRef
from orchestrator.versions.apply import apply_group
from orchestrator.versions.in_flight import active_groups, read_in_flight
from orchestrator.versions.store import (
    StoredVersion,
    current_refs,
    find_version,
    insert_version,
    list_versions,
    load_version,
    lock_current,
    make_current,
    mark_blocked,
    next_number,
    version_labels,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    """What one process did with a journey's files: ``applied`` them (``first`` when no
    version was current), found them ``current`` (another process applied them), found them
    ``superseded`` (an earlier content: not applied again), or ``blocked`` (see the plan)."""

    journey_id: str
    status: str
    version: VersionRef
    previous: VersionRef | None = None
    plan: JourneyPlan | None = None
    labels: Mapping[int, str] = field(default_factory=dict)
    report: Mapping[str, Any] | None = None

    def lines(self) -> list[str]:
        if self.plan is None:
            return []
        return [line for g in self.plan.groups for line in describe_group(g, self.labels)]


@dataclass(frozen=True)
class PendingChange:
    """A journey's files against its current version, for ``stepmail plan`` and the console:
    ``unchanged``, ``new`` (no version yet), ``changed``, ``blocked`` (a step vanished with
    rows waiting), ``superseded`` (the files hold an earlier version, not applied again) or
    ``file removed`` (nobody new enters; customers in flight finish on their version)."""

    journey_id: str
    status: str
    current: VersionRef | None
    number: int | None  # the version number the files are, or would be
    in_flight: int  # active enrollments
    plan: JourneyPlan | None = None
    labels: Mapping[int, str] = field(default_factory=dict)

    @property
    def changes_in_flight(self) -> bool:
        return self.plan is not None and self.status != "superseded" and self.plan.changes_in_flight

    def lines(self) -> list[str]:
        if self.plan is None:
            return []
        return [line for g in self.plan.groups for line in describe_group(g, self.labels)]

    def headline(self) -> str:
        """``flow: version 1 → version 2 (follow_latest), 380 enrollment(s) in flight``."""
        current = str(self.current) if self.current else "no version"
        files = f"version {self.number}" if self.number is not None else "no file"
        who = f"{self.in_flight} enrollment(s) in flight"
        if self.status == "unchanged":
            return f"{self.journey_id}: unchanged ({current}), {who}"
        if self.status == "file removed":
            return f"{self.journey_id}: file removed: nobody new enters; {who} finish on {current}"
        if self.status == "superseded":
            return (
                f"{self.journey_id}: the files hold {files}, replaced before by {current}: "
                "not applied again (change the file to make it current again)"
            )
        policy = f" (in_flight: {self.plan.policy})" if self.plan is not None else ""
        return f"{self.journey_id}: {current} → {files}{policy}, {who}"

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "journey": self.journey_id,
            "status": self.status,
            "current_version": self.current.number if self.current else None,
            "files_version": self.number,
            "enrollments_in_flight": self.in_flight,
            "changes_in_flight": self.changes_in_flight,
        }
        if self.plan is not None:
            found["plan"] = plan_as_json(self.plan, self.labels)
        return found


@dataclass(frozen=True)
class VersionInfo:
    """One version of a journey, for the console's journey page."""

    ref: VersionRef
    seen_at: datetime
    applied_at: datetime | None
    current: bool
    started: int  # enrollments that started on it
    following: int  # active enrollments that follow it now
    blocked_reason: str | None
    apply_report: Mapping[str, Any] | None


def sync_journey(
    engine: Engine, content: JourneyContent, journey: Journey, *, clock: Clock
) -> SyncOutcome:
    """Store the content if it is new and make it current, applying the change to the
    customers in flight; once, whichever process calls first (the others find it current)."""
    with engine.begin() as connection:
        now = clock.now()
        head = lock_current(connection, journey.id)
        row = find_version(connection, journey.id, content.content_hash)
        if row is None:
            row = insert_version(connection, content, now)
        previous = _ref(connection, head)
        if head == row.ref.id:
            return SyncOutcome(journey.id, "current", row.ref, previous)
        if row.applied_at is not None:
            return SyncOutcome(journey.id, "superseded", row.ref, previous)
        plan, labels = _plan(connection, journey, content, row.ref, head is None, now)
        if plan.blocking:
            mark_blocked(connection, row.ref.id, "; ".join(blocking_lines(plan)))
            return SyncOutcome(journey.id, "blocked", row.ref, previous, plan, labels)
        groups = [apply_group(connection, journey.id, g, row.ref.id, now) for g in plan.groups]
        report = {"from": previous.number if previous else None, "groups": groups}
        make_current(connection, journey.id, row.ref.id, report, now)
    _compare(plan, groups)
    status = "first" if previous is None else "applied"
    return SyncOutcome(journey.id, status, row.ref, previous, plan, labels, report)


def plan_changes(
    engine: Engine,
    contents: Mapping[str, tuple[JourneyContent, Journey]],
    *,
    now: datetime,
    journey_ids: Sequence[str] | None = None,
) -> list[PendingChange]:
    """What applying the files would do, journey by journey (or for ``journey_ids``); reads
    only (``engine`` may be read-only: :func:`orchestrator.db.engine.make_engine`)."""
    with engine.connect() as connection:
        refs = current_refs(connection)
        wanted = sorted(set(contents) | set(refs)) if journey_ids is None else list(journey_ids)
        return [
            _pending(connection, journey_id, contents.get(journey_id), refs.get(journey_id), now)
            for journey_id in wanted
        ]


def current_journey_versions(engine: Engine) -> dict[str, VersionRef]:
    """The journeys' current versions. Read in a transaction that commits: the catalog asks
    once a second, and psycopg forgets every statement a connection prepared when it rolls
    back, so a read ending in ROLLBACK made each pooled connection in turn prepare and plan
    its hot statements afresh (bench/README, "Session 30")."""
    with engine.begin() as connection:
        return current_refs(connection)


def load_journey_version(engine: Engine, version_id: int) -> StoredVersion | None:
    with engine.connect() as connection:
        return load_version(connection, version_id)


def journey_versions(engine: Engine, journey_id: str) -> list[VersionInfo]:
    """Every version of a journey, oldest first, with who started on and follows each."""
    with engine.connect() as connection:
        current = current_refs(connection).get(journey_id)
        following = active_groups(connection, journey_id)
        return _versions(connection, journey_id, current, following)


def versions_and_plan(
    engine: Engine,
    journey_id: str,
    files: tuple[JourneyContent, Journey] | None,
    *,
    now: datetime,
) -> tuple[list[VersionInfo], PendingChange | None]:
    """The journey page's reads: :func:`journey_versions`, and what :func:`plan_changes`
    says of ``files`` (None without them), from one read of who follows each version (the
    journey's open enrollments, which grow with its customers: ~17 ms at 20,000)."""
    with engine.connect() as connection:
        current = current_refs(connection).get(journey_id)
        following = active_groups(connection, journey_id)
        versions = _versions(connection, journey_id, current, following)
        if files is None:
            return versions, None
        return versions, _pending(connection, journey_id, files, current, now, following)


def _versions(
    connection: Connection,
    journey_id: str,
    current: VersionRef | None,
    following: Mapping[int | None, int],
) -> list[VersionInfo]:
    started = version_starts(connection, journey_id)
    return [
        VersionInfo(
            row.ref,
            row.seen_at,
            row.applied_at,
            current is not None and current.id == row.ref.id,
            started.get(row.ref.id, 0),
            following.get(row.ref.id, 0),
            row.blocked_reason,
            row.apply_report,
        )
        for row in list_versions(connection, journey_id)
    ]


def stored_journey(stored: StoredVersion) -> Journey | None:
    """The journey a stored version holds; None (logged) if this release can no longer read
    it (a field removed since): its customers are then treated as having no version."""
    journey_id = stored.row.journey_id
    try:
        return parse_journey(stored.yaml_text, Path(f"{journey_id}.yaml"))
    except JourneyError as exc:
        log.error("%s %s can no longer be read: %s", journey_id, stored.row.ref, exc)
        return None


# -- planning, shared by applying and `stepmail plan` ------------------------------------------


def _plan(
    connection: Connection,
    journey: Journey,
    content: JourneyContent,
    version: VersionRef,
    first: bool,
    now: datetime,
    following: Mapping[int | None, int] | None = None,
) -> tuple[JourneyPlan, dict[int, str]]:
    """The plan of making ``version`` current, from what is in flight now (``following``:
    :func:`active_groups`, when the caller has read it)."""
    if following is None:
        following = active_groups(connection, journey.id)
    groups = {key: size for key, size in following.items() if key != version.id}
    base = read_in_flight(connection, journey.id, groups)
    diffs = {}
    for key, group in base.items():
        stored = load_version(connection, key) if key is not None else None
        old = stored_journey(stored) if stored is not None else None
        diffs[key] = diff_versions(
            old,
            journey,
            old_templates=stored.template_hashes if stored is not None and old else None,
            new_templates=content.template_hashes,
            present=[step for step, rows in group.steps.items() if rows.waiting],
        )
    needs = {key: steps_needing_anchors(diff) for key, diff in diffs.items()}
    detail = {key: steps for key, (steps, _) in needs.items() if steps}
    anchors_for = [key for key, (_, every) in needs.items() if every]
    groups_read = (
        read_in_flight(connection, journey.id, groups, detail, anchors_for)
        if detail or anchors_for
        else base
    )
    order = sorted(groups, key=lambda key: -1 if key is None else key)
    plan = plan_change(
        journey.id,
        journey,
        version.number,
        [(groups_read[key], diffs[key]) for key in order],
        now,
        first=first,
        diff_empty=all(diff.is_empty for diff in diffs.values()),
    )
    return plan, version_labels(connection, [key for key in groups if key is not None])


def _pending(
    connection: Connection,
    journey_id: str,
    files: tuple[JourneyContent, Journey] | None,
    current: VersionRef | None,
    now: datetime,
    following: Mapping[int | None, int] | None = None,
) -> PendingChange:
    if following is None:
        following = active_groups(connection, journey_id)
    in_flight = sum(following.values())
    if files is None:
        return PendingChange(journey_id, "file removed", current, None, in_flight)
    content, journey = files
    if current is not None and current.content_hash == content.content_hash:
        return PendingChange(journey_id, "unchanged", current, current.number, in_flight)
    row = find_version(connection, journey_id, content.content_hash)
    if row is not None and row.applied_at is not None:
        return PendingChange(journey_id, "superseded", current, row.ref.number, in_flight)
    number = row.ref.number if row is not None else next_number(connection, journey_id)
    version = VersionRef(row.ref.id if row else -1, number, content.content_hash)
    plan, labels = _plan(connection, journey, content, version, current is None, now, following)
    status = "new" if current is None else "blocked" if plan.blocking else "changed"
    return PendingChange(journey_id, status, current, number, in_flight, plan, labels)


def blocking_lines(plan: JourneyPlan) -> list[str]:
    """One line per vanished step that blocks a change (for the log and ``stepmail plan``)."""
    return [
        f"step {v.step_id} vanished while {v.rows} row(s) wait for it: add "
        f"`renamed_from: {v.step_id}` to the step that replaces it, or list it under "
        "`removed_steps:` with the reason"
        for v in plan.blocking
    ]


def _ref(connection: Connection, version_id: int | None) -> VersionRef | None:
    if version_id is None:
        return None
    stored = load_version(connection, version_id)
    return stored.row.ref if stored is not None else None


def _compare(plan: JourneyPlan, groups: Sequence[Mapping[str, Any]]) -> None:
    """Applying does what the plan said (rows a worker took meanwhile aside): say so if not."""
    for planned, done in zip(plan.groups, groups, strict=True):
        if not planned.moves:
            continue
        expected = {
            "renamed": {f"{r.old_id}→{r.new_id}": r.rows for r in planned.renames},
            "cancelled": {c.step_id: c.rows for c in planned.cancels},
            "rescheduled": {
                s.step_id: {"rows": s.rows, "missed": s.missed} for s in planned.reschedules
            },
            "added": {a.step_id: {"scheduled": a.scheduled, "past": a.past} for a in planned.adds},
        }
        for key, value in expected.items():
            if done.get(key) != value:
                log.warning(
                    "%s: applying did %s %s, the plan said %s (rows taken by a worker meanwhile?)",
                    plan.journey_id,
                    key,
                    done.get(key),
                    value,
                )
