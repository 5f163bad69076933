"""A step's mail as a customer of one tier and language would get it: subject, HTML, text and
the headers that matter to a reviewer (From, Reply-To, List-Unsubscribe).

The customer is a made-up sample of that tier and language (:mod:`orchestrator.samples`); the
mail goes through the same rendering and composing as a real send, so what the console shows
is what the pipeline builds. No database is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from orchestrator.customers.facts import CustomerFacts
from orchestrator.errors import InvalidField, NotFound, TemplateError
from orchestrator.journeys.model import ALL_TIERS, Journey, Step
from orchestrator.recipients.unsubscribe_links import unsubscribe_url
from orchestrator.rendering.compose import compose_mail
from orchestrator.rendering.context import SenderIdentity, mail_context
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.transports.mail import Mailbox, OutgoingMail

PREVIEW_LOCALES = ("ja", "en")
PREVIEW_TOKEN = "PREVIEW"  # noqa: S105  (the link is a sample: no customer behind it)


@dataclass(frozen=True)
class PreviewRules:
    """What a preview needs beyond the journeys and the renderer (built from settings)."""

    sender: SenderIdentity
    public_base_url: str
    unsubscribe_mailto: str | None = None


@dataclass(frozen=True)
class Preview:
    journey: Journey
    step: Step
    tier: str
    locale: str
    template_name: str
    mail: OutgoingMail

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers a reviewer checks, as a reader would see them (not RFC-encoded)."""
        shown = [("From", _shown(self.mail.sender)), ("To", _shown(self.mail.to))]
        if self.mail.reply_to is not None:
            shown.append(("Reply-To", _shown(self.mail.reply_to)))
        shown += list(self.mail.headers.items())
        return shown


def find_step(
    journeys: Mapping[str, Journey], journey_id: str, step_id: str
) -> tuple[Journey, Step]:
    journey = journeys.get(journey_id)
    if journey is None:
        raise NotFound(f"no journey {journey_id!r}")
    try:
        return journey, journey.step(step_id)
    except KeyError:
        raise NotFound(f"journey {journey_id!r} has no step {step_id!r}") from None


def preview_step(
    journeys: Mapping[str, Journey],
    renderer: MailRenderer,
    *,
    journey_id: str,
    step_id: str,
    tier: str,
    locale: str,
    rules: PreviewRules,
    now: datetime,
) -> Preview:
    """TemplateError when the template cannot render (the console shows where)."""
    journey, step = find_step(journeys, journey_id, step_id)
    if tier not in ALL_TIERS or tier not in step.tiers:
        raise InvalidField("tier", f"the step is for {', '.join(step.tiers)}")
    if locale not in PREVIEW_LOCALES:
        raise InvalidField("locale", f"one of {', '.join(PREVIEW_LOCALES)}")
    customer = sample_customer(tier, locale, now)
    mail, template_name = _compose(renderer, journey, step, customer, rules, now)
    return Preview(journey, step, tier, locale, template_name, mail)


def preview_for_customer(
    journeys: Mapping[str, Journey],
    renderer: MailRenderer,
    *,
    journey_id: str,
    step_id: str,
    customer: CustomerFacts,
    rules: PreviewRules,
    now: datetime,
) -> Preview:
    """The step as this real customer would get it (their tier, locale and data); the
    unsubscribe link is still the preview's, never one that works for them."""
    journey, step = find_step(journeys, journey_id, step_id)
    mail, template_name = _compose(renderer, journey, step, customer, rules, now)
    return Preview(journey, step, customer.tier, customer.locale, template_name, mail)


@dataclass(frozen=True)
class SubjectRenderer:
    """The subject a step renders to for a real customer today (the customer page shows it for
    sent steps until the message archive keeps subjects as sent); None if it cannot render."""

    renderer: MailRenderer
    sender: SenderIdentity
    now: datetime

    def __call__(self, customer: CustomerFacts, journey: Journey, step: Step) -> str | None:
        context = mail_context(
            customer=customer,
            journey=journey,
            step=step,
            sender=self.sender,
            unsubscribe_url=unsubscribe_url("https://example.invalid", PREVIEW_TOKEN),
            now=self.now,
        )
        try:
            return self.renderer.render(
                step.template, customer.tier, customer.locale, context
            ).subject
        except TemplateError:
            return None


def _compose(
    renderer: MailRenderer,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    rules: PreviewRules,
    now: datetime,
) -> tuple[OutgoingMail, str]:
    link = unsubscribe_url(rules.public_base_url, PREVIEW_TOKEN)
    context = mail_context(
        customer=customer,
        journey=journey,
        step=step,
        sender=rules.sender,
        unsubscribe_url=link,
        now=now,
    )
    rendered = renderer.render(step.template, customer.tier, customer.locale, context)
    mail = compose_mail(
        rendered=rendered,
        customer=customer,
        journey=journey,
        step=step,
        sender=rules.sender,
        send_id=0,
        enrollment_id=0,
        unsubscribe_url=link,
        now=now,
        unsubscribe_mailto=rules.unsubscribe_mailto,
    )
    return mail, rendered.template_name


def _shown(mailbox: Mailbox) -> str:
    return f"{mailbox.name} <{mailbox.email}>" if mailbox.name else mailbox.email
