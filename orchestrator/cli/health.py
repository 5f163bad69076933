"""``stepmail health daily``: the daily rescoring, run now (the scheduler runs it by itself)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.moments import moment_option
from orchestrator.cli.output import console
from orchestrator.errors import NoHealthDefinition
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="Health scores.")


@app.command("daily")
def health_daily(
    since: Annotated[
        str | None,
        typer.Option(help="ISO 8601; default: where the last run (scheduled or not) stopped"),
    ] = None,
) -> None:
    """Rescore now the customers whose events entered or left a window since the last run.
    (The scheduler does this once a day by itself.)"""
    from orchestrator.runtime import build_runtime
    from orchestrator.services.health import run_daily_now

    runtime = build_runtime(load_settings())
    try:
        rules = runtime.usage_rules()
        if rules.health is None:
            raise NoHealthDefinition(f"no health.yaml in {runtime.settings.journeys_dir}")
        report = run_daily_now(
            runtime.engine,
            rules=rules,
            clock=runtime.clock,
            notify=runtime.notify_now,
            since=moment_option("--since", since) if since else None,
        )
        notified = runtime.notify_now()
    finally:
        runtime.close()
    console.print(
        f"{report.candidates} customer(s) rescored ({report.rows_examined} event rows read, "
        f"{report.newly_actionable} past their first days), "
        f"{len(report.task_ids)} task(s) opened, {notified} notified"
    )
