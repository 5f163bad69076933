"""``journeys/programs.yaml``: the low-touch programs, webinars and group sessions with a date,
time zone, capacity and registration link; checked by ``stepmail check``.

Low-touch mails show the next sessions (``programs`` in templates, ``m.sessions``) in the
customer's language and local time; each session's link is signed per customer
(``/programs/<token>``) so the registration comes back as a ``program_registered`` event.
Attendance comes back through the events API or ``stepmail track`` (``program_attended``
with ``program: <id>``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.customers.tiers import Tier
from orchestrator.customers.timezones import validate_timezone, zone
from orchestrator.guards.links import check_web_link
from orchestrator.journeys.durations import Duration
from orchestrator.journeys.model import Slug
from orchestrator.journeys.yaml_files import (
    load_problems,
    read_mapping,
    read_when_changed,
    validation_error,
)

PROGRAMS_FILE = "programs.yaml"
# Far enough inside Python's calendar (years 1 to 9999) for any time zone and MAX_DURATION.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
SHOWN = 3  # the next sessions a mail lists
# What `check` and previews render a low-touch mail with: the list must fit in every template.
PREVIEW_SESSIONS: tuple[dict[str, object], ...] = (
    {
        "id": "preview",
        "kind": "webinar",
        "title": "Reports in 30 minutes / 30分でわかるレポート",
        "starts": "2026年12月3日(木) 15:00",
        "timezone": "Asia/Tokyo",
        "minutes": 60,
        "url": "https://example.invalid/programs/PREVIEW",
    },
)


class Program(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    kind: Literal["webinar", "group_session"]
    title: dict[str, str] = Field(description="The session's title in ja and en.")
    starts_at: AwareDatetime
    timezone: Annotated[str, AfterValidator(validate_timezone)] = Field(
        description="Where the session is held (its date is read in it)."
    )
    duration: Duration = timedelta(hours=1)
    capacity: int = Field(ge=1, le=100_000)
    registration_url: Annotated[str, AfterValidator(check_web_link)]
    tiers: tuple[Tier, ...] = ("low",)
    languages: tuple[Literal["ja", "en"], ...] = ("ja", "en")

    @field_validator("starts_at")
    @classmethod
    def _on_the_calendar(cls, value: datetime) -> datetime:
        """A start every time zone can show, with its duration added: near year 1 or 9999 the
        reader's local time (or the end) falls off Python's calendar (OverflowError)."""
        if not _EARLIEST <= value < _LATEST:
            raise ValueError(
                f"a start from {_EARLIEST.year} to {_LATEST.year - 1}, not {value.isoformat()}"
            )
        return value

    @model_validator(mode="after")
    def _titled(self) -> Program:
        if not {"ja", "en"} <= set(self.title):
            raise ValueError(f"{self.id}: title needs ja and en")
        return self


class Programs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    programs: tuple[Program, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Programs:
        ids = [p.id for p in self.programs]
        if len(ids) != len(set(ids)):
            raise ValueError("programs: an id is used twice")
        return self

    def get(self, program_id: str) -> Program | None:
        return next((p for p in self.programs if p.id == program_id), None)

    def upcoming(
        self, now: datetime, tier: str, language: str, limit: int = SHOWN
    ) -> list[Program]:
        """The next sessions for the tier and language, soonest first."""
        found = [
            p
            for p in self.programs
            if p.starts_at > now and tier in p.tiers and language in p.languages
        ]
        return sorted(found, key=lambda p: p.starts_at)[:limit]


class SessionsAt:
    """The sessions mails list at one moment, as templates show them: worked out once per tier
    and language, and each session's view once per language and time zone. A batch of mails
    to customers in a few time zones formats each start a few times, not once a mail; only
    the link (signed per customer) is left to fill in. For one batch: it never forgets."""

    def __init__(self, programs: Programs, now: datetime) -> None:
        self._programs = programs
        self._now = now
        self._upcoming: dict[tuple[str, str], list[Program]] = {}
        self._views: dict[tuple[str, str, str], dict[str, object]] = {}

    def shown(
        self, tier: str, language: str, timezone: str
    ) -> list[tuple[Program, dict[str, object]]]:
        """Each session a mail to this reader lists, with its view but for the ``url``."""
        programs = self._upcoming.get((tier, language))
        if programs is None:
            programs = self._programs.upcoming(self._now, tier, language)
            self._upcoming[(tier, language)] = programs
        return [(program, self._view(program, language, timezone)) for program in programs]

    def _view(self, program: Program, language: str, timezone: str) -> dict[str, object]:
        key = (program.id, language, timezone)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = session_view(program, language, timezone, "")
        return view


def session_view(program: Program, language: str, timezone: str, url: str) -> dict[str, object]:
    """What a template sees of one session: title, kind and start in the reader's language and
    local time (``2026年12月3日(木) 15:00`` / ``Thu 3 Dec 2026, 3:00 PM``), and its link."""
    local = program.starts_at.astimezone(zone(timezone))
    if language == "ja":
        weekday = "月火水木金土日"[local.weekday()]
        when = f"{local.year}年{local.month}月{local.day}日({weekday}) {local:%H:%M}"
    else:
        hour = local.hour % 12 or 12
        when = f"{local:%a} {local.day} {local:%b %Y}, {hour}:{local:%M} {local:%p}"
    return {
        "id": program.id,
        "kind": program.kind,
        "title": program.title.get(language) or program.title["en"],
        "starts": when,
        "timezone": timezone,
        "minutes": int(program.duration.total_seconds() // 60),
        "url": url,
    }


def load_programs(path: Path) -> Programs:
    root, data = read_mapping(path, "the programs file")
    try:
        return Programs.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc) from None


def programs_definition(journeys_dir: Path) -> Programs | None:
    """The installation's programs, or None without a programs file. Cached per version."""
    return _read_programs(journeys_dir / PROGRAMS_FILE)


_read_programs = read_when_changed(load_programs)


def programs_problems(journeys_dir: Path) -> list[str]:
    """For ``stepmail check``: a broken programs file."""
    return load_problems(journeys_dir / PROGRAMS_FILE, load_programs)
