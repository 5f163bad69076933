"""What a mail template can see. Plain dicts only: the sandbox never reaches a live object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.customers.facts import CustomerFacts
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
