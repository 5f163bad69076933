"""Send one step's mail as a test: to one address (the console sends it to the signed-in
user), through the configured transport, marked as a test, with no enrollment, no schedule row
and nothing counted.

A test mail is the preview's mail (sample customer of the tier and language) with ``[TEST]``
before its subject, an ``X-Stepmail-Test: 1`` header, its own idempotency key, and none of the
metadata that would tie a provider's events to a real send. The audit log records each one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from orchestrator.audit.log import Actor, record
from orchestrator.clock import Clock
from orchestrator.delivery.facts import customer_facts
from orchestrator.enrollment.customers import customer_row
from orchestrator.errors import DeliveryError, InvalidField
from orchestrator.guards.mail_headers import check_plain_address
from orchestrator.journeys.model import Journey
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.services.previews import PreviewRules, preview_for_customer, preview_step
from orchestrator.transports.base import Transport
from orchestrator.transports.mail import Mailbox

TEST_PREFIX = "[TEST] "
TEST_HEADER = "X-Stepmail-Test"


@dataclass(frozen=True)
class TestSent:
    to: str
    subject: str
    idempotency_key: str
    provider_message_id: str | None


def send_test(
    engine: Engine,
    *,
    transport: Transport,
    journeys: Mapping[str, Journey],
    renderer: MailRenderer,
    rules: PreviewRules,
    journey_id: str,
    step_id: str,
    tier: str,
    locale: str,
    to: str,
    actor: Actor,
    clock: Clock,
    customer: str | None = None,
) -> TestSent:
    """Render, send, audit. A transport failure is audited too, then raised. With
    ``customer`` (an external id) the mail is that customer's, with their tier, locale and
    current data (``tier`` and ``locale`` are then theirs); it still goes only to ``to``."""
    address = to.strip()
    try:
        check_plain_address(address)
    except ValueError as exc:
        raise InvalidField("to", str(exc)) from None
    now = clock.now()
    if customer is None:
        preview = preview_step(
            journeys,
            renderer,
            journey_id=journey_id,
            step_id=step_id,
            tier=tier,
            locale=locale,
            rules=rules,
            now=now,
        )
    else:
        with engine.connect() as connection:
            facts = customer_facts(connection, customer_row(connection, customer).id)
        preview = preview_for_customer(
            journeys,
            renderer,
            journey_id=journey_id,
            step_id=step_id,
            customer=facts,
            rules=rules,
            now=now,
        )
        tier, locale = facts.tier, facts.locale
    key = f"stepmail-test-{journey_id}-{step_id}-{secrets.token_hex(6)}"
    mail = replace(
        preview.mail,
        idempotency_key=key,
        to=Mailbox(address),
        subject=TEST_PREFIX + preview.mail.subject,
        headers={**preview.mail.headers, TEST_HEADER: "1"},
        metadata={"stepmail_test": "1", "stepmail_journey": journey_id, "stepmail_step": step_id},
        categories=("stepmail-test",),
    )
    target = ("step", f"{journey_id}/{step_id}")
    details = {"tier": tier, "locale": locale, "to": address}
    if customer is not None:
        details["customer"] = customer
    try:
        result = transport.send(mail)
    except DeliveryError as exc:
        with engine.begin() as connection:
            record(
                connection,
                actor,
                "step.test_send_failed",
                target,
                clock.now(),
                **details,
                error=str(exc)[:500],
            )
        raise
    with engine.begin() as connection:
        record(connection, actor, "step.test_send", target, clock.now(), **details)
    return TestSent(address, mail.subject, key, result.provider_message_id)
