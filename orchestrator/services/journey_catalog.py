"""The journeys one process uses, kept in step with the files and with the other processes.

Every ``recheck_after`` seconds of the clock's ``monotonic()`` (when asked: whenever the
runtime's journeys are read, by a worker's batch, the scheduler, a request), the process
looks at the journey and template files' sizes and modification times. When they changed,
it reads them, and each journey whose content is new goes through
:func:`orchestrator.services.journey_versions.sync_journey`: stored, and applied to the
customers in flight by whichever process gets the journey's lock first. Then it reads which
version of each journey is current, so every process uses the version applied, whoever
applied it, and a process whose files are stale (a rolling deploy) still uses the current
one.

Which journeys new customers enter is what this process's folder holds: a file removed stops
new entries here, while customers in flight finish on the version they follow. Versions are
loaded from the store by id (the YAML parsed, the templates kept in a
:class:`~orchestrator.rendering.snapshot.SnapshotRenderer`) and cached: what an enrollment on
an older version (``in_flight: finish_started``) is sent comes from its own version.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from orchestrator.clock import Clock
from orchestrator.errors import JourneyError
from orchestrator.journeys.catalog import JourneySet
from orchestrator.journeys.loader import journey_files, parse_journey
from orchestrator.journeys.model import Journey
from orchestrator.journeys.versions import JourneyContent
from orchestrator.journeys.yaml_files import read_text
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.snapshot import SnapshotRenderer, used_templates
from orchestrator.services.journey_versions import (
    PendingChange,
    SyncOutcome,
    VersionInfo,
    blocking_lines,
    current_journey_versions,
    load_journey_version,
    plan_changes,
    stored_journey,
    sync_journey,
    versions_and_plan,
)

log = logging.getLogger(__name__)

CACHED_VERSIONS = 32
Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class LoadedVersion:
    """A version ready to use: its journey and a renderer over its templates."""

    version_id: int
    journey_id: str
    journey: Journey
    renderer: MailRenderer


def read_journey_contents(
    journeys_dir: Path,
    templates_dir: Path,
    default_locale: str,
    include: Callable[[Journey], bool] | None = None,
    *,
    only: str | None = None,
) -> tuple[dict[str, tuple[JourneyContent, Journey]], list[tuple[Path, JourneyError]]]:
    """Every journey file of the folder (or ``only`` that journey's) with the templates it
    uses (a version's content), and the files that cannot be read, with why."""
    found: dict[str, tuple[JourneyContent, Journey]] = {}
    broken: list[tuple[Path, JourneyError]] = []
    for path in journey_files(journeys_dir):
        if only is not None and path.stem != only:
            continue
        try:
            text = read_text(path)
            journey = parse_journey(text, path)
        except JourneyError as exc:
            broken.append((path, exc))
            continue
        if include is not None and not include(journey):
            continue
        templates = used_templates(journey, templates_dir, default_locale)
        found[journey.id] = (JourneyContent(journey.id, text, templates), journey)
    return found, broken


class JourneyCatalog:
    """The journeys of one process: the current versions new customers enter (:meth:`view`)
    and any version an enrollment follows (:meth:`journey`, :meth:`renderer`)."""

    def __init__(
        self,
        engine: Engine,
        journeys_dir: Path,
        templates_dir: Path,
        default_locale: str,
        clock: Clock,
        *,
        reader: Engine | None = None,
        recheck_after: float = 1.0,
        include: Callable[[Journey], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader or engine  # reads snapshots, also while a write transaction is open
        self.journeys_dir = journeys_dir
        self.templates_dir = templates_dir
        self.default_locale = default_locale
        self.recheck_after = recheck_after
        self._clock = clock
        self._include = include
        self._refreshing = threading.Lock()
        self._cache_lock = threading.Lock()
        self._loaded: OrderedDict[int, LoadedVersion | None] = OrderedDict()
        self._view = JourneySet({})
        self._disk: dict[str, tuple[JourneyContent, Journey]] = {}
        self._synced: dict[str, str] = {}  # journey id → the content hash last synced here
        self._signature: Signature | None = None
        self._next_check = -math.inf
        self._said: set[str] = set()

    # -- what callers use ---------------------------------------------------------------------

    def view(self) -> JourneySet:
        """The current version of each journey this process offers, with version ids."""
        return self._view

    def journey(self, journey_id: str, version_id: int | None) -> Journey | None:
        """The journey an enrollment on ``version_id`` follows (None: the current one)."""
        if version_id is None:
            return self._view.get(journey_id)
        loaded = self._load(version_id)
        if loaded is None or loaded.journey_id != journey_id:
            return None
        return loaded.journey

    def renderer(self, journey_id: str, version_id: int | None) -> MailRenderer | None:
        """The renderer of that version's templates (None: none stored; use the folder's)."""
        version_id = version_id if version_id is not None else self._view.version_id(journey_id)
        if version_id is None:
            return None
        loaded = self._load(version_id)
        return loaded.renderer if loaded is not None else None

    def compile_templates(self) -> int:
        """Compile the templates of each journey's current version now, and say how many: a
        worker process does this as it starts, so its first batches do not (the shipped
        journeys' 108 templates take ~0.8 s; one thread's first batch of welcome mails took
        ~0.35 s against ~0.08 s for the next: bench/README, "Session 19"). A template that
        cannot be compiled is only counted here: rendering a mail that needs it says why."""
        started = time.perf_counter()
        compiled = failed = 0
        for journey_id in sorted(self._view):
            renderer = self.renderer(journey_id, None)
            if renderer is None:
                continue
            for name in renderer.template_names():
                if renderer.compile(name):
                    compiled += 1
                else:
                    failed += 1
        log.info(
            "mail templates of %d journeys compiled in %.1f s: %d (%d could not be)",
            len(self._view),
            time.perf_counter() - started,
            compiled,
            failed,
        )
        return compiled

    def disk_contents(self) -> dict[str, tuple[JourneyContent, Journey]]:
        """The journeys as this process last read them from its folder."""
        return dict(self._disk)

    # -- keeping up ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the files now, whatever their modification times say (tests; a reload asked
        for by an operator)."""
        with self._refreshing:
            self._signature = None
            self._refresh(strict=False)

    def start(self) -> None:
        """At start-up: read and sync everything; a broken journey file stops the process."""
        with self._refreshing:
            self._refresh(strict=True)

    def refresh_if_due(self) -> None:
        """Cheap when nothing is due; never waits for another thread that is refreshing."""
        if self._clock.monotonic() < self._next_check:
            return
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            self._refresh(strict=False)
        except Exception:
            log.exception("journeys: refresh failed; still using the versions loaded before")
        finally:
            self._refreshing.release()

    def close(self) -> None:
        if self.reader is not self.engine:
            self.reader.dispose()

    def _refresh(self, *, strict: bool) -> None:
        self._next_check = self._clock.monotonic() + self.recheck_after
        signature = self._disk_signature()
        if signature != self._signature:
            self._read_disk(strict=strict)
            for journey_id, (content, journey) in sorted(self._disk.items()):
                if self._synced.get(journey_id) != content.content_hash:
                    self._said_about(sync_journey(self.engine, content, journey, clock=self._clock))
                    self._synced[journey_id] = content.content_hash
            self._signature = signature
        self._set_view()

    def _disk_signature(self) -> Signature:
        """Every journey and template file with its size and modification time: a change to
        any is seen; nothing is read."""
        found: list[tuple[str, int, int]] = []
        for folder in (self.journeys_dir, self.templates_dir):
            for root, _, names in os.walk(folder):
                for name in names:
                    path = os.path.join(root, name)
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue
                    found.append((path, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    def _read_disk(self, *, strict: bool) -> None:
        disk, broken = read_journey_contents(
            self.journeys_dir, self.templates_dir, self.default_locale, self._include
        )
        for path, exc in broken:
            if strict:
                raise exc
            self._say(logging.ERROR, f"{exc}; {path.stem} keeps the version it had")
            if path.stem in self._disk:
                disk[path.stem] = self._disk[path.stem]
        for gone in sorted(set(self._disk) - set(disk)):
            self._say(
                logging.WARNING,
                f"{gone}: its file is gone: nobody new enters it; customers in flight finish "
                "on the version they follow",
            )
        self._disk = disk

    def _set_view(self) -> None:
        heads = current_journey_versions(self.engine)
        journeys: dict[str, Journey] = {}
        version_ids: dict[str, int] = {}
        for journey_id, (content, on_disk) in self._disk.items():
            head = heads.get(journey_id)
            if head is not None and head.content_hash == content.content_hash:
                self._remember(head.id, journey_id, on_disk, content.templates)
            loaded = self._load(head.id) if head is not None else None
            if loaded is None:
                journeys[journey_id] = on_disk  # not recorded (yet): as the folder has it
                continue
            journeys[journey_id] = loaded.journey
            version_ids[journey_id] = loaded.version_id
        self._view = JourneySet(journeys, version_ids, self.journey)

    def _remember(
        self, version_id: int, journey_id: str, journey: Journey, templates: Mapping[str, str]
    ) -> None:
        """The files hold the current version: use what was read from them rather than parse
        the stored copy again (the same text)."""
        with self._cache_lock:
            if self._loaded.get(version_id) is not None:
                return
        renderer = SnapshotRenderer(templates, self.default_locale)
        with self._cache_lock:
            self._loaded[version_id] = LoadedVersion(version_id, journey_id, journey, renderer)
            while len(self._loaded) > CACHED_VERSIONS:
                self._loaded.popitem(last=False)

    def _load(self, version_id: int) -> LoadedVersion | None:
        with self._cache_lock:
            if version_id in self._loaded:
                self._loaded.move_to_end(version_id)
                return self._loaded[version_id]
        stored = load_journey_version(self.reader, version_id)
        journey = stored_journey(stored) if stored is not None else None
        loaded = None
        if stored is not None and journey is not None:
            renderer = SnapshotRenderer(stored.templates, self.default_locale)
            loaded = LoadedVersion(version_id, stored.row.journey_id, journey, renderer)
        with self._cache_lock:
            self._loaded[version_id] = loaded
            while len(self._loaded) > CACHED_VERSIONS:
                self._loaded.popitem(last=False)
        return loaded

    # -- saying what happened -------------------------------------------------------------------

    def _said_about(self, outcome: SyncOutcome) -> None:
        journey_id, version = outcome.journey_id, outcome.version
        file = self.journeys_dir / f"{journey_id}.yaml"
        if outcome.status == "first":
            log.info("%s: %s recorded and current", journey_id, version)
        elif outcome.status == "applied":
            changes = "; ".join(outcome.lines()) or "nothing in flight changes"
            log.info("%s: %s applied (was %s): %s", journey_id, version, outcome.previous, changes)
        elif outcome.status == "superseded":
            self._say(
                logging.WARNING,
                f"{file}: holds {version}, which was current before and was replaced by "
                f"{outcome.previous}: not applied again (a stale copy?); this process follows "
                f"{outcome.previous}. To make that content current again, change the file "
                "(a comment saying why is enough).",
            )
        elif outcome.status == "blocked":
            assert outcome.plan is not None
            self._say(
                logging.ERROR,
                f"{file}: {version} is not applied, {journey_id} stays on {outcome.previous}: "
                + "; ".join(blocking_lines(outcome.plan)),
            )
        if outcome.plan is not None and outcome.status in ("first", "applied"):
            for group in outcome.plan.groups:
                for vanished in group.vanished:
                    if vanished.rows and group.moves:
                        log.error(
                            "%s: %d row(s) wait for step %s, which %s does not have: they are "
                            "skipped when due; add `renamed_from: %s` to the step that replaces "
                            "it, or list it under `removed_steps:`",
                            journey_id,
                            vanished.rows,
                            vanished.step_id,
                            version,
                            vanished.step_id,
                        )

    def _say(self, level: int, message: str) -> None:
        """Once per process: a refresh every second must not repeat itself."""
        if message not in self._said:
            self._said.add(message)
            log.log(level, "%s", message)


def plan_folder(
    engine: Engine, journeys_dir: Path, templates_dir: Path, default_locale: str, now: datetime
) -> list[PendingChange]:
    """``stepmail plan``: what applying the folder's journeys would do to the customers in
    flight, journey by journey, read from ``engine`` (read-only: nothing is stored, not even
    the new versions). A file that cannot be read is an error: nothing would be applied."""
    contents, broken = read_journey_contents(journeys_dir, templates_dir, default_locale)
    if broken:
        raise broken[0][1]
    return plan_changes(engine, contents, now=now)


@dataclass(frozen=True)
class VersionOverview:
    """A journey's versions and the change its file holds (the console's journey page)."""

    versions: list[VersionInfo]
    pending: PendingChange | None  # None: the file cannot be read (``problem``) or is gone
    problem: str | None = None


def version_overview(
    engine: Engine,
    journeys_dir: Path,
    templates_dir: Path,
    default_locale: str,
    journey_id: str,
    now: datetime,
) -> VersionOverview:
    """Every version of ``journey_id`` with who started on and follows it, and the plan of the
    change its file holds against the current version: what ``stepmail plan`` says for it
    (a change every process applies within seconds, unless it is blocked). Reads only."""
    contents, broken = read_journey_contents(
        journeys_dir, templates_dir, default_locale, only=journey_id
    )
    problem = next((str(exc) for _, exc in broken), None)
    versions, pending = versions_and_plan(engine, journey_id, contents.get(journey_id), now=now)
    return VersionOverview(versions, pending, problem)
