"""``stepmail preview``: a step's mail as a sample customer (or a real one) would get it,
written as HTML and text files for a reviewer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.customers.facts import CustomerFacts
from orchestrator.errors import FileAccessError, InvalidInput, JourneyNotFound, StepNotFound
from orchestrator.journeys.model import ALL_TIERS, Journey, Step
from orchestrator.journeys.programs import PREVIEW_SESSIONS
from orchestrator.rendering.context import mail_context, sender_identity
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.rendering.samples import sample_customer
from orchestrator.settings import Settings

PREVIEW_UNSUBSCRIBE_URL = "https://example.invalid/unsubscribe/PREVIEW"


def render_sample(
    settings: Settings,
    renderer: MailRenderer,
    journey: Journey,
    step: Step,
    tier: str,
    locale: str,
    now: datetime,
    *,
    csm: bool | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> RenderedMail:
    """Render one step as a sample customer of ``tier`` and ``locale``, signed up ``now``,
    would receive it (``csm`` and ``attributes`` as in :func:`sample_customer`)."""
    customer = sample_customer(tier, locale, now, csm=csm, attributes=attributes)
    return render_for(settings, renderer, journey, step, customer, now)


def render_for(
    settings: Settings,
    renderer: MailRenderer,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    now: datetime,
) -> RenderedMail:
    """Render one step for ``customer``, with the preview's unsubscribe link (a real one
    would be a working capability written into a file) and, in low touch, sample sessions."""
    context = mail_context(
        customer=customer,
        journey=journey,
        step=step,
        sender=sender_identity(settings),
        unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL,
        now=now,
        sessions=PREVIEW_SESSIONS if customer.tier == "low" else (),
    )
    return renderer.render(step.template, customer.tier, customer.locale, context)


def find_step(
    journeys: Mapping[str, Journey], journey_id: str, step_id: str
) -> tuple[Journey, Step]:
    """The journey and step named; JourneyNotFound / StepNotFound (exit code 3)."""
    journey = journeys.get(journey_id)
    if journey is None:
        raise JourneyNotFound(f"no journey {journey_id!r}")
    try:
        return journey, journey.step(step_id)
    except KeyError:
        raise StepNotFound(f"journey {journey_id!r} has no step {step_id!r}") from None


def check_tier(tier: str) -> str:
    if tier not in ALL_TIERS:
        raise InvalidInput(f"--tier must be one of {', '.join(ALL_TIERS)}, not {tier!r}")
    return tier


@dataclass(frozen=True)
class PreviewFiles:
    html: Path
    text: Path


def write_preview(mail: RenderedMail, out: Path, stem: str) -> PreviewFiles:
    """``<out>/<stem>.html`` and ``.txt`` (the text with its subject on top)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path, text_path = out / f"{stem}.html", out / f"{stem}.txt"
        html_path.write_text(mail.html, encoding="utf-8")
        text_path.write_text(f"Subject: {mail.subject}\n\n{mail.text}", encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(f"--out {out}: {exc.strerror or exc}") from None
    return PreviewFiles(html_path, text_path)


def safe_stem(*parts: str) -> str:
    """A file name from ids that may hold anything (an external id): no separators, no dots
    at the start."""
    text = ".".join(parts)
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return cleaned.lstrip(".")[:200] or "preview"
