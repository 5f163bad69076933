"""``stepmail send-test``: one step's mail as a test, to one address, through the configured
transport (the same service as the console's "Send a test")."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.audit.log import COMMAND_LINE
from orchestrator.cli.arguments import external_id_option, utf8_text
from orchestrator.cli.db import require_database
from orchestrator.cli.output import console, printable
from orchestrator.errors import InvalidInput
from orchestrator.runtime import build_runtime
from orchestrator.services.test_sends import send_test
from orchestrator.settings import load_settings


def send_test_command(
    journey: str,
    step: str,
    to: Annotated[str, typer.Option("--to", help="the address that gets the test")],
    tier: Annotated[str | None, typer.Option(help="high | low | tech (default tech)")] = None,
    locale: Annotated[str | None, typer.Option(help="ja | en (default ja)")] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="EXTERNAL_ID: this customer's mail, with their current data"),
    ] = None,
) -> None:
    """Send one step's mail as a test ([TEST] subject, X-Stepmail-Test header) through the
    configured transport: a sample customer of the tier and language, or --customer's own
    mail; only to --to, no enrollment, not counted."""
    utf8_text("--to", to)
    if customer is not None and (tier is not None or locale is not None):
        raise InvalidInput("--tier and --locale are the customer's own with --customer")
    if customer is not None:
        customer = external_id_option("--customer", customer)
    settings = load_settings()
    require_database(settings)  # the audit row, and --customer's data
    runtime = build_runtime(settings)
    try:
        sent = send_test(
            runtime.engine,
            transport=runtime.transport,
            journeys=runtime.journeys,
            renderer=runtime.renderer,
            rules=runtime.preview_rules(),
            journey_id=journey,
            step_id=step,
            tier=tier or "tech",
            locale=locale or "ja",
            to=to,
            actor=COMMAND_LINE,
            clock=runtime.clock,
            customer=customer,
        )
    finally:
        runtime.close()
    console.print(f"sent {sent.subject!r} to {printable(sent.to)} ({sent.idempotency_key})")
