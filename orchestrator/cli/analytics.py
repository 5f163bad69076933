"""``stepmail analytics``: the rollups behind funnels, for operators. The scheduler keeps them
by itself (every ten seconds); ``rebuild`` counts everything again (after changing
``ANALYTICS_TIMEZONE``, or to count what was sent before analytics existed, at once)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli.output import console
from orchestrator.clock import SystemClock
from orchestrator.errors import InvalidInput
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from orchestrator.services.analytics import AnalyticsRules

app = typer.Typer(no_args_is_help=True, help="Journey analytics: the daily rollups.")


@app.command("rebuild")
def rebuild(
    since: Annotated[
        str | None,
        typer.Option(
            help="first day to count again (YYYY-MM-DD, analytics time zone); default: all"
        ),
    ] = None,
) -> None:
    """Count every send and enrollment again from its row, from --since on (or all days)."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.analytics import rebuild_rollups

    settings = load_settings()
    day = _day(since) if since else None
    with open_engine(settings) as engine:
        report = rebuild_rollups(engine, rules=_rules(settings), clock=SystemClock(), since=day)
    console.print(
        f"counted {report.sends} send(s) and {report.enrollments} enrollment(s) "
        f"into {report.rollup_rows} rollup row change(s)"
    )


@app.command("refresh")
def refresh() -> None:
    """Count now what changed since the scheduler last counted (it does every ten seconds)."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.analytics import refresh_rollups

    settings = load_settings()
    with open_engine(settings) as engine:
        report = refresh_rollups(engine, rules=_rules(settings), batches=None)
    console.print(f"counted {report.sends} send(s) and {report.enrollments} enrollment(s)")


def _rules(settings: Settings) -> AnalyticsRules:
    """What the rollups need: the time zone of their days (no journeys)."""
    from orchestrator.services.analytics import AnalyticsRules

    return AnalyticsRules(journeys={}, timezone=settings.reporting_timezone)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: expected a day, YYYY-MM-DD") from None
