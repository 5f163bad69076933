"""``stepmail send-test``: one step's mail as a test, to one address, through the configured
transport (the same service as the console's "Send a test")."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.audit.log import COMMAND_LINE
from orchestrator.cli.journeys import LocaleOption, TierOption
from orchestrator.cli.output import console
from orchestrator.runtime import build_runtime
from orchestrator.services.test_sends import send_test
from orchestrator.settings import load_settings


def send_test_command(
    journey: str,
    step: str,
    to: Annotated[str, typer.Option("--to", help="the address that gets the test")],
    tier: TierOption = "tech",
    locale: LocaleOption = "ja",
) -> None:
    """Send one step's mail as a test ([TEST] subject, X-Stepmail-Test header) through the
    configured transport: a sample customer of the tier and language, no enrollment, not counted."""
    runtime = build_runtime(load_settings())
    try:
        sent = send_test(
            runtime.engine,
            transport=runtime.transport,
            journeys=runtime.journeys,
            renderer=runtime.renderer,
            rules=runtime.preview_rules(),
            journey_id=journey,
            step_id=step,
            tier=tier,
            locale=locale,
            to=to,
            actor=COMMAND_LINE,
            clock=runtime.clock,
        )
    finally:
        runtime.close()
    console.print(f"sent {sent.subject!r} to {sent.to} ({sent.idempotency_key})", highlight=False)
