"""``stepmail check``: what would fail after shipping, found before, each as ``file:line: cause``.

In order: every journey, the health score and the event catalogue load; every event they name
is catalogued; every condition uses names it has; then every step renders for every tier,
language, with and without a CSM and each attribute a template reads, with the legal footer
and links a mail client can follow; with ``--links``, each link answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.errors import JourneyError, TemplateError
from orchestrator.health.lifecycle import lifecycle_problems
from orchestrator.health.loader import (
    HEALTH_FILE,
    health_event_references,
    health_problems,
    load_health,
)
from orchestrator.health.model import HealthDefinition
from orchestrator.journeys.catalogue import EVENTS_FILE, EventCatalogue, load_catalogue
from orchestrator.journeys.lint import event_references, journey_problems, vocabulary
from orchestrator.journeys.loader import journey_files, load_all
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.programs import programs_problems
from orchestrator.rendering.context import sender_identity
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.settings import Settings
from orchestrator.startup.preflight import journeys_folder_problem, templates_folder_problem
from orchestrator.tools.link_check import LinkCheckRules, check_links_online
from orchestrator.tools.links import link_problem, links_in, where_written
from orchestrator.tools.preview import PREVIEW_UNSUBSCRIBE_URL, render_sample
from orchestrator.tools.template_branches import (
    SAMPLE_LINK_HOST,
    Variant,
    template_locales,
    tested_attributes,
    variants,
)


@dataclass(frozen=True)
class CheckOptions:
    links: LinkCheckRules | None = None  # --links: fetch every link with these bounds


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    rendered: int = 0
    links_checked: int = 0

    def add(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


def check_all(
    settings: Settings, now: datetime, options: CheckOptions | None = None
) -> CheckReport:
    """Every problem as ``file:line: cause``, how many mails rendered cleanly, links fetched."""
    options = options or CheckOptions()
    report = CheckReport()
    folders = [journeys_folder_problem(settings), templates_folder_problem(settings)]
    for unreadable in filter(None, folders):
        report.add(unreadable)
    if report.problems:
        return report  # nothing to read: "no problems" would say a mistyped path is fine
    journeys = _check_files(settings.journeys_dir, report)
    online = _render_everything(settings, journeys, now, report)
    if options.links is not None:
        answers = check_links_online(online, options.links)
        report.links_checked = len(answers)
        for url, problem in answers.items():
            if problem is not None:
                report.add(f"{online[url]}: link {url} {problem}")
    return report


def _check_files(journeys_dir: Path, report: CheckReport) -> dict[str, Journey]:
    loaded = load_all(journeys_dir)
    for error in loaded.errors:
        report.add(str(error))
    catalogue = _catalogue(journeys_dir, report)
    health = _health(journeys_dir)
    for message in health_problems(journeys_dir, loaded.journeys, catalogue):
        report.add(message)
    for message in lifecycle_problems(journeys_dir) + programs_problems(journeys_dir):
        report.add(message)
    words = vocabulary(catalogue, [band.id for band in health.bands] if health else None)
    paths = {path.stem: path for path in journey_files(journeys_dir)}
    for journey in loaded.journeys.values():
        for problem in journey_problems(paths[journey.id], journey, catalogue, words):
            report.add(str(problem))
    if catalogue is None and not (journeys_dir / EVENTS_FILE).exists():
        named = sorted(_named_events(loaded.journeys.values(), health))
        if named:
            report.add(
                f"{journeys_dir / EVENTS_FILE}: missing: journeys and the health score name "
                f"{len(named)} events ({', '.join(named)}); list each in the event catalogue"
            )
    return loaded.journeys


def _catalogue(journeys_dir: Path, report: CheckReport) -> EventCatalogue | None:
    path = journeys_dir / EVENTS_FILE
    if not os.path.lexists(path):  # a symlink loop is there, and reported
        return None
    try:
        return load_catalogue(path)
    except JourneyError as exc:
        report.add(str(exc))
        return None


def _health(journeys_dir: Path) -> HealthDefinition | None:
    path = journeys_dir / HEALTH_FILE
    try:
        return load_health(path) if path.exists() else None
    except JourneyError:
        return None  # health_problems reports it


def _named_events(journeys: Iterable[Journey], health: HealthDefinition | None) -> set[str]:
    names = {ref.event for journey in journeys for ref in event_references(journey)}
    if health is not None:
        names |= {ref.event for ref in health_event_references(health)}
    return names


def _render_everything(
    settings: Settings, journeys: dict[str, Journey], now: datetime, report: CheckReport
) -> dict[str, str]:
    """Render every step for every sample; returns each web link found → where it is written."""
    samples = _Samples(settings, now, report)
    for journey in journeys.values():
        for step in journey.steps:
            for tier in step.tiers:
                for locale in samples.locales:
                    for variant in samples.variants:
                        samples.render(journey, step, tier, locale, variant)
    return samples.online


class _Samples:
    """Renders steps for sample customers and notes what is wrong with each mail."""

    def __init__(self, settings: Settings, now: datetime, report: CheckReport) -> None:
        self.settings, self.now, self.report = settings, now, report
        self.renderer = MailRenderer(settings.templates_dir, settings.default_locale)
        self.tested = tested_attributes(settings.templates_dir)
        self.locales = template_locales(settings.templates_dir, settings.default_locale)
        self.variants = variants(self.tested)
        self.online: dict[str, str] = {}  # web link → where it is written
        self._written: dict[tuple[str, str], str] = {}

    def render(
        self, journey: Journey, step: Step, tier: str, locale: str, variant: Variant
    ) -> None:
        try:
            mail = render_sample(
                self.settings,
                self.renderer,
                journey,
                step,
                tier,
                locale,
                self.now,
                csm=variant.csm,
                attributes=variant.attributes,
            )
        except TemplateError as exc:
            located = _where(self.settings, exc)
            if not any(problem.startswith(located) for problem in self.report.problems):
                label = variant.label(self.tested)
                self.report.add(f"{located} ({journey.id}/{step.id}, {tier}, {locale}, {label})")
            return
        self.report.rendered += 1
        for problem in _footer_problems(mail, journey, step, tier, locale, self.settings):
            self.report.add(problem)
        clipped = _clipped(mail, self.settings.templates_dir)
        if clipped is not None:
            self.report.add(f"{clipped} ({journey.id}/{step.id}, {tier}, {locale})")
        self._links(mail, journey, step)

    def _links(self, mail: RenderedMail, journey: Journey, step: Step) -> None:
        for url in links_in(mail.html):
            problem = link_problem(url)
            if problem is not None:
                written = self._where_written(url, mail.template_name)
                self.report.add(f"{written}: link {url!r} {problem} ({journey.id}/{step.id})")
            elif url not in self.online and self._fetchable(url):
                self.online[url] = self._where_written(url, mail.template_name)

    def _where_written(self, url: str, template_name: str) -> str:
        key = (url, template_name)
        if key not in self._written:
            self._written[key] = where_written(self.settings.templates_dir, url, template_name)
        return self._written[key]

    @staticmethod
    def _fetchable(url: str) -> bool:
        """An author's web link: not the preview's unsubscribe link or a sample attribute's."""
        parts = urlsplit(url)
        return (
            url != PREVIEW_UNSUBSCRIBE_URL
            and parts.scheme in ("http", "https")
            and parts.hostname != SAMPLE_LINK_HOST
        )


# Gmail shows a mail whose HTML is over about 102 KB cut off, behind "[Message clipped] View
# entire message": the end of the mail, where the layout puts the sender's address and the
# unsubscribe link the law asks for, is what the reader no longer sees.
GMAIL_CLIPS_AT = 102_000


def _clipped(mail: RenderedMail, templates_dir: Path) -> str | None:
    """The problem of a mail Gmail would clip (its template file and its size), if it is one."""
    size = len(mail.html.encode("utf-8"))
    if size <= GMAIL_CLIPS_AT:
        return None
    return (
        f"{templates_dir / mail.template_name}: renders to {size / 1000:,.0f} KB of HTML; Gmail "
        f"clips a mail past {GMAIL_CLIPS_AT // 1000} KB, hiding its end (the sender's address "
        "and the unsubscribe link)"
    )


def _footer_problems(
    mail: RenderedMail, journey: Journey, step: Step, tier: str, locale: str, settings: Settings
) -> list[str]:
    """The law (特定電子メール法, CAN-SPAM) asks for these in every mail, as the sender is
    named in the mail's language (STEPMAIL_SENDER_*_<lang>)."""
    sender = sender_identity(settings).for_language(locale)
    required = {
        "sender name": sender.name,
        "postal address": sender.postal_address,
        "contact": sender.contact,
        "unsubscribe link": PREVIEW_UNSUBSCRIBE_URL,
    }
    return [
        f"{mail.template_name}: footer lacks the {what} ({journey.id}/{step.id}, {tier}, {locale})"
        for what, value in required.items()
        if value not in mail.html
    ]


def _where(settings: Settings, exc: TemplateError) -> str:
    path = settings.templates_dir / exc.template
    return f"{path}:{exc.line}: {exc.message}" if exc.line else f"{path}: {exc.message}"
