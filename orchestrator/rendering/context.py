"""What a mail template can see. Plain dicts only: the sandbox never reaches a live object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from orchestrator.customers.facts import CustomerFacts
from orchestrator.journeys.model import Journey, Step
from orchestrator.settings import Settings

SENDER_LANGUAGES = ("ja", "en")  # the languages with their own STEPMAIL_SENDER_*_<lang>
PREVIEW_SURVEY_URL = "https://example.invalid/nps/preview"


@dataclass(frozen=True)
class SenderIdentity:
    """Who the law says must be named in every mail: name, postal address and a contact;
    ``local`` holds what differs per language (``(language, name, address, contact)``, None
    where the default stands), so a Japanese footer reads in Japanese conventions."""

    name: str
    email: str
    postal_address: str
    contact: str
    local: tuple[tuple[str, str | None, str | None, str | None], ...] = ()
    # language → the identity for_language gives: every mail asks, and building it again
    # (dataclasses.replace) cost ~5 µs a mail
    _by_language: dict[str, SenderIdentity] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def for_language(self, language: str) -> SenderIdentity:
        """The identity a mail in ``language`` names."""
        known = self._by_language.get(language)
        if known is None:
            known = self._by_language[language] = self._made_for(language)
        return known

    def _made_for(self, language: str) -> SenderIdentity:
        for lang, name, address, contact in self.local:
            if lang == language:
                return replace(
                    self,
                    name=name or self.name,
                    postal_address=address or self.postal_address,
                    contact=contact or self.contact,
                    local=(),
                )
        return self


def sender_identity(settings: Settings) -> SenderIdentity:
    local = tuple(
        (
            language,
            getattr(settings, f"sender_name_{language}"),
            getattr(settings, f"sender_postal_address_{language}"),
            getattr(settings, f"sender_contact_{language}"),
        )
        for language in SENDER_LANGUAGES
    )
    return SenderIdentity(
        settings.sender_name,
        settings.sender_email,
        settings.sender_postal_address,
        settings.sender_contact,
        local=local,
    )


def mail_context(
    *,
    customer: CustomerFacts,
    journey: Journey,
    step: Step,
    sender: SenderIdentity,
    unsubscribe_url: str,
    now: datetime,
    survey_url: str | None = None,
    sessions: Sequence[Mapping[str, object]] = (),
) -> dict[str, Any]:
    """The variables every mail template gets (documented in templates/mail/README.md).
    ``survey_url``: the customer's signed survey page, for a step that carries a survey
    (previews and ``check`` get an example link); ``sessions``: the next webinars and group
    sessions for the customer (:func:`orchestrator.journeys.programs.session_view`)."""
    sender = sender.for_language(customer.language)
    csm = (
        {"name": customer.csm_name, "email": customer.csm_email}
        if customer.csm_name and customer.csm_email
        else None
    )
    return {
        "customer": customer.as_dict(),
        "csm": csm,
        "tier": customer.tier,
        "locale": customer.language,
        "sender": {
            "name": sender.name,
            "email": sender.email,
            "postal_address": sender.postal_address,
            "contact": sender.contact,
        },
        "journey": {"id": journey.id, "name": journey.name},
        "step": {"id": step.id},
        "vars": dict(journey.vars),
        "days_since_signup": max(0, (now - customer.signed_up_at).days),
        "unsubscribe_url": unsubscribe_url,
        "survey": _survey(journey, step, survey_url),
        "sessions": [dict(session) for session in sessions],
        "now": now,
    }


def _survey(journey: Journey, step: Step, url: str | None) -> dict[str, Any] | None:
    """``survey.scores``: the 0-10 scale, one link per score (one click in any mail client)."""
    survey_id = journey.survey_id(step)
    if survey_id is None:
        return None
    base = url or PREVIEW_SURVEY_URL
    return {
        "id": survey_id,
        "scores": [{"score": n, "url": f"{base}?score={n}"} for n in range(11)],
    }
