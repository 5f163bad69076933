"""``stepmail status``: how the installation stands, read from the database and Redis.

Exits 0 when nothing needs an operator, 1 when something does (the schema behind the code,
Redis configured but not answering, sends whose outcome is unknown), 69 when the database
does not answer; so it serves as a check in a script as well as a glance in a terminal.
"""

from __future__ import annotations

import typer

from orchestrator.cli.output import JsonFlag, console, labelled, print_json, printable
from orchestrator.settings import load_settings


def status(json_output: JsonFlag = False) -> None:
    """Counts per send state, due lag, unknown and reconciling sends, open tasks, the last
    health-job run, webhooks waiting, schema version, Redis."""
    from orchestrator.clock import SystemClock
    from orchestrator.runtime import open_engine
    from orchestrator.services.status import system_status

    settings = load_settings()
    with open_engine(settings) as engine:
        report = system_status(engine, SystemClock().now(), redis_url=settings.redis_url)
    if json_output:
        print_json(report.to_json())
    else:
        _print(report)
    if report.problems:
        raise typer.Exit(1)


def _print(report: object) -> None:
    from orchestrator.services.status import SystemStatus

    assert isinstance(report, SystemStatus)
    schema = ", ".join(report.schema_current) or "none"
    head = "up to date" if report.schema_ok else f"code expects {', '.join(report.schema_head)}"
    done = report.health_job_done_until
    counts = "  ".join(f"{state} {n}" for state, n in report.send_states.items() if n) or "none"
    rows = [
        ("schema", f"{schema} ({head})"),
        ("redis", report.redis),
        ("due now", f"{report.due} (oldest waited {report.due_lag_seconds:.0f}s)"),
        ("sends", counts),
        ("unknown", str(report.unknown)),
        ("reconciling", str(report.reconciling)),
        ("open tasks", str(report.open_tasks)),
        ("health job", f"done until {done:%Y-%m-%d %H:%M} UTC" if done else "never run"),
        (
            "webhooks",
            f"{report.webhooks.get('waiting', 0)} waiting, "
            f"{report.webhooks.get('failed', 0)} failed",
        ),
    ]
    for name, value in rows:
        console.print(f"{name:<12} {printable(value)}")
    for problem in report.problems:
        labelled("attention:", "yellow", problem)
