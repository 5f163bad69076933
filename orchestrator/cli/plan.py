"""``stepmail plan``: what applying the journey files would do to the customers in flight, in
numbers, before any process applies them. Read-only against the configured database.

Exit code: 0 when nothing changes for customers in flight, 10 when applying changes what
some of them get, 11 when a change would not be applied (a step vanished while rows wait for
it); a file or database problem has its usual code (65, 78)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrator.cli.moments import moment_option
from orchestrator.cli.output import console
from orchestrator.clock import SystemClock
from orchestrator.errors import ConfigurationError
from orchestrator.settings import load_settings

NOTHING_CHANGES = 0
IN_FLIGHT_CHANGES = 10
BLOCKED = 11


def plan(
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    at: Annotated[
        str | None,
        typer.Option(help="plan as if applied at this moment (ISO 8601 with offset; default now)"),
    ] = None,
) -> None:
    """What applying the journey files would do to customers in flight (read-only)."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.journey_catalog import plan_folder
    from orchestrator.services.journey_versions import blocking_lines
    from orchestrator.startup.preflight import database_problems, journeys_folder_problem

    settings = load_settings()
    # no folder (a mistyped setting) would plan every journey as removed, and pass
    folder = journeys_folder_problem(settings)
    problems = [folder] if folder else database_problems(settings.database_url)
    if problems:
        raise ConfigurationError("\n".join(problems))
    with open_engine(settings, read_only=True) as engine:
        changes = plan_folder(
            engine,
            settings.journeys_dir,
            settings.templates_dir,
            settings.default_locale,
            moment_option("--at", at) if at else SystemClock().now(),
        )
    blocked = any(change.status == "blocked" for change in changes)
    in_flight = any(change.changes_in_flight for change in changes)
    if as_json:
        document = {
            "changes_in_flight": in_flight,
            "blocked": blocked,
            "journeys": [change.as_json() for change in changes],
        }
        console.out(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        for change in changes:
            console.print(change.headline())
            for line in change.lines():
                console.print(f"  {line}")
            if change.plan is not None and change.status == "blocked":
                for line in blocking_lines(change.plan):
                    console.print(f"  NOT APPLIED: {line}")
        console.print(
            "blocked: a change would not be applied"
            if blocked
            else "customers in flight: changes"
            if in_flight
            else "customers in flight: nothing changes"
        )
    raise typer.Exit(BLOCKED if blocked else IN_FLIGHT_CHANGES if in_flight else NOTHING_CHANGES)
