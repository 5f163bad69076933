"""What a mail template can see. Plain dicts only: the sandbox never reaches a live object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from orchestrator.journeys.model import Journey, Step
from orchestrator.settings import Settings


@dataclass(frozen=True)
class SenderIdentity:
    """Who the law says must be named in every mail: name, postal address and a contact."""

    name: str
    email: str
    postal_address: str
    contact: str


def sender_identity(settings: Settings) -> SenderIdentity:
    return SenderIdentity(
        settings.sender_name,
        settings.sender_email,
        settings.sender_postal_address,
        settings.sender_contact,
    )


@dataclass(frozen=True)
class CustomerFacts:
    """The customer as templates and conditions see it, detached from the database."""

    external_id: str
    email: str
    name: str
    company: str
    plan: str
    tier: str
    locale: str
    timezone: str
    annual_contract_value: Decimal
    currency: str
    csm_name: str | None
    csm_email: str | None
    attributes: dict[str, Any]
    signed_up_at: datetime
    public_id: str = ""  # random id for unsubscribe links; never shown to templates

    @property
    def language(self) -> str:
        return self.locale.split("-")[0].split("_")[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "email": self.email,
            "name": self.name,
            "company": self.company,
            "plan": self.plan,
            "tier": self.tier,
            "locale": self.locale,
            "language": self.language,
            "timezone": self.timezone,
            "annual_contract_value": self.annual_contract_value,
            "currency": self.currency,
            "csm_name": self.csm_name,
            "csm_email": self.csm_email,
            "attributes": dict(self.attributes),
            "signed_up_at": self.signed_up_at,
        }


def mail_context(
    *,
    customer: CustomerFacts,
    journey: Journey,
    step: Step,
    sender: SenderIdentity,
    unsubscribe_url: str,
    now: datetime,
) -> dict[str, Any]:
    """The variables every mail template gets (documented in templates/mail/README.md)."""
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
        "now": now,
    }
