"""``stepmail check``, ``preview``, ``simulate`` and ``schema``: for people writing journeys
and templates. They need no secrets and no database."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import typer

from orchestrator.cli.output import JsonFlag, console, errors, print_json
from orchestrator.clock import SystemClock
from orchestrator.settings import load_settings

TierOption = Annotated[
    Literal["high", "low", "tech"], typer.Option("--tier", help="the touch tier")
]
LocaleOption = Annotated[str, typer.Option("--locale", help="ja | en | …")]


def check() -> None:
    """Load every journey and render every step × tier × locale with sample data."""
    from orchestrator.tools.check import check_all

    settings = load_settings()
    problems, rendered = check_all(settings, SystemClock().now())
    for problem in problems:
        errors.print(f"[red]✗[/red] {problem}", highlight=False)
    if problems:
        errors.print(f"{len(problems)} problem(s)")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {rendered} mails rendered, no problems")


def preview(
    journey: str,
    step: str,
    tier: TierOption = "tech",
    locale: LocaleOption = "ja",
    out: Annotated[Path, typer.Option(help="folder for the files")] = Path("var/preview"),
    json_output: JsonFlag = False,
) -> None:
    """Render one step for a sample customer; writes the HTML and text and prints their paths."""
    from orchestrator.tools.check import preview_step

    paths = preview_step(load_settings(), journey, step, tier, locale, out, SystemClock().now())
    if json_output:
        print_json([str(path) for path in paths])
        return
    for path in paths:
        console.print(str(path), highlight=False)


def simulate(
    journey: str,
    tier: TierOption = "tech",
    locale: LocaleOption = "ja",
    days: Annotated[int, typer.Option(help="how many days to simulate")] = 30,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="OFFSET:NAME[:k=v,...], e.g. 2d:report_created (repeatable)"),
    ] = None,
    acv: Annotated[Decimal | None, typer.Option(help="starting annual contract value")] = None,
    nps: Annotated[int | None, typer.Option(help="an NPS score submitted on day 0")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Run the real pipeline for a sample customer with scripted usage: mails, skips, score
    changes and tasks, day by day. No side effects (a throwaway database, nothing sent)."""
    from orchestrator.tools.simulation import (
        ScriptedEvent,
        format_timeline,
        parse_scripted_event,
        simulate_journey,
    )

    script = [parse_scripted_event(text) for text in event or []]
    if nps is not None:
        script.insert(0, ScriptedEvent(timedelta(0), "nps_submitted", {"score": nps}))
    settings = load_settings()
    timeline = simulate_journey(
        settings, journey, tier, locale, days, SystemClock().now(), script, acv
    )
    if json_output:
        print_json(timeline)
    else:
        console.print(format_timeline(timeline), highlight=False)


def schema(
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Print the JSON Schema of journey files (for editors)."""
    from orchestrator.journeys.loader import journey_json_schema

    text = journey_json_schema()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(str(out))
