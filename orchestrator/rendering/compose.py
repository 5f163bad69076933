"""Turn a rendered template into the mail a transport sends: who it is from, the
unsubscribe headers, and the metadata providers echo back."""

from __future__ import annotations

from datetime import datetime

from orchestrator.customers.facts import CustomerFacts
from orchestrator.journeys.model import Journey, Step
from orchestrator.recipients.unsubscribe_links import list_unsubscribe_header
from orchestrator.rendering.context import SenderIdentity
from orchestrator.rendering.renderer import RenderedMail
from orchestrator.transports.mail import Mailbox, OutgoingMail


def compose_mail(
    *,
    rendered: RenderedMail,
    customer: CustomerFacts,
    journey: Journey,
    step: Step,
    sender: SenderIdentity,
    send_id: int,
    enrollment_id: int,
    unsubscribe_url: str,
    now: datetime,
    unsubscribe_mailto: str | None = None,
    row_step_id: str | None = None,
) -> OutgoingMail:
    """A high-touch mail comes from the customer's CSM (name and Reply-To); others from the team,
    named as in the customer's language.

    The idempotency key names the step as the row does (``row_step_id``): a row written
    before its step was renamed keeps the key its first attempt had."""
    sender = sender.for_language(customer.language)
    from_mailbox = Mailbox(sender.email, sender.name)
    reply_to = None
    if customer.tier in journey.csm_sender_tiers and customer.csm_name and customer.csm_email:
        from_mailbox = Mailbox(sender.email, f"{customer.csm_name} ({sender.name})")
        reply_to = Mailbox(customer.csm_email, customer.csm_name)
    domain = sender.email.rpartition("@")[2] or "stepmail.local"
    return OutgoingMail(
        idempotency_key=f"stepmail-{enrollment_id}-{row_step_id or step.id}",
        sender=from_mailbox,
        to=Mailbox(customer.email, customer.name),
        reply_to=reply_to,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        headers={
            "List-Unsubscribe": list_unsubscribe_header(unsubscribe_url, unsubscribe_mailto),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        metadata={
            "stepmail_send_id": str(send_id),
            "stepmail_enrollment_id": str(enrollment_id),
            "stepmail_journey": journey.id,
            "stepmail_step": step.id,
            "stepmail_tier": customer.tier,
        },
        categories=(journey.id, f"{journey.id}/{step.id}", f"tier-{customer.tier}"),
        message_id_domain=domain,
        date=now,
    )
