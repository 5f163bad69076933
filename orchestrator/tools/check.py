"""``stepmail check`` and ``preview``: render journeys with sample customers before shipping."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from orchestrator.errors import InvalidInput, JourneyNotFound, StepNotFound, TemplateError
from orchestrator.health.loader import health_problems
from orchestrator.journeys.loader import load_all, load_journeys
from orchestrator.journeys.model import ALL_TIERS, Journey, Step
from orchestrator.rendering.context import mail_context, sender_identity
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.rendering.samples import sample_customer
from orchestrator.settings import Settings

CHECK_LOCALES = ("ja", "en")
PREVIEW_UNSUBSCRIBE_URL = "https://example.invalid/unsubscribe/PREVIEW"


def render_sample(
    settings: Settings,
    renderer: MailRenderer,
    journey: Journey,
    step: Step,
    tier: str,
    locale: str,
    now: datetime,
) -> RenderedMail:
    """Render one step as a sample customer of ``tier`` and ``locale``, signed up ``now``,
    would receive it."""
    customer = sample_customer(tier, locale, now)
    sender = sender_identity(settings)
    context = mail_context(
        customer=customer,
        journey=journey,
        step=step,
        sender=sender,
        unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL,
        now=now,
    )
    return renderer.render(step.template, tier, locale, context)


def check_all(settings: Settings, now: datetime) -> tuple[list[str], int]:
    """Every problem as ``file:line: cause``, and how many mails rendered cleanly."""
    report = load_all(settings.journeys_dir)
    problems = [str(error) for error in report.errors]
    problems += health_problems(settings.journeys_dir, report.journeys)
    renderer = MailRenderer(settings.templates_dir, settings.default_locale)
    rendered = 0
    for journey in report.journeys.values():
        for step in journey.steps:
            for tier in step.tiers:
                for locale in CHECK_LOCALES:
                    try:
                        mail = render_sample(settings, renderer, journey, step, tier, locale, now)
                    except TemplateError as exc:
                        problems.append(
                            f"{_where(settings, exc)} ({journey.id}/{step.id}, {tier}, {locale})"
                        )
                        continue
                    problems += _footer_problems(mail, journey, step, tier, locale, settings)
                    rendered += 1
    return problems, rendered


def preview_step(
    settings: Settings,
    journey_id: str,
    step_id: str,
    tier: str,
    locale: str,
    out: Path,
    now: datetime,
) -> list[Path]:
    if tier not in ALL_TIERS:
        raise InvalidInput(f"--tier must be one of {', '.join(ALL_TIERS)}, not {tier!r}")
    journeys = load_journeys(settings.journeys_dir)
    journey = journeys.get(journey_id)
    if journey is None:
        raise JourneyNotFound(f"no journey {journey_id!r} in {settings.journeys_dir}")
    try:
        step = journey.step(step_id)
    except KeyError:
        raise StepNotFound(f"journey {journey_id!r} has no step {step_id!r}") from None
    renderer = MailRenderer(settings.templates_dir, settings.default_locale)
    mail = render_sample(settings, renderer, journey, step, tier, locale, now)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{journey_id}.{step_id}.{tier}.{locale}"
    html_path, text_path = stem.with_suffix(".html"), stem.with_suffix(".txt")
    html_path.write_text(mail.html, encoding="utf-8")
    text_path.write_text(f"Subject: {mail.subject}\n\n{mail.text}", encoding="utf-8")
    return [html_path, text_path]


def _footer_problems(
    mail: RenderedMail, journey: Journey, step: Step, tier: str, locale: str, settings: Settings
) -> list[str]:
    """The law (特定電子メール法, CAN-SPAM) asks for these in every mail."""
    required = {
        "sender name": settings.sender_name,
        "postal address": settings.sender_postal_address,
        "contact": settings.sender_contact,
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
