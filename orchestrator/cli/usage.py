"""``stepmail track``, ``stepmail tasks …`` and ``stepmail health daily``: usage and hand-off
from the command line, through the same services as the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.orm import Session

from orchestrator.errors import InvalidInput, JobAlreadyRunning, NoHealthDefinition
from orchestrator.services.tasks import TaskStatus
from orchestrator.settings import load_settings

console = Console(soft_wrap=True)
tasks_app = typer.Typer(no_args_is_help=True, help="CSM tasks: the hand-off to a human.")
health_app = typer.Typer(no_args_is_help=True, help="Health scores.")


def track(
    external_id: str,
    event: str,
    prop: Annotated[
        list[str] | None, typer.Option("--prop", help="key=value (numbers and true/false typed)")
    ] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="idempotency key")] = None,
    at: Annotated[str | None, typer.Option(help="ISO 8601 with offset; default now")] = None,
) -> None:
    """Record a usage event for a customer, as ``POST /v1/events`` would."""
    from orchestrator.runtime import build_runtime
    from orchestrator.tools.simulation import parse_value
    from orchestrator.usage.events import EventIn, ingest_events, usage_rules

    properties = {}
    for pair in prop or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--prop {pair!r}: expected key=value")
        properties[key] = parse_value(value)
    try:
        item = EventIn.model_validate(
            {
                "external_id": external_id,
                "name": event,
                "id": event_id,
                "occurred_at": at,
                "properties": properties,
            }
        )
    except ValidationError as exc:
        raise InvalidInput(_problems(exc)) from None
    runtime = build_runtime(load_settings())
    try:
        now = runtime.clock.now()
        with Session(runtime.engine) as session, session.begin():
            result = ingest_events(session, [item], usage_rules(runtime), now)
        runtime.notify_now(result.task_ids)
    finally:
        runtime.close()
    what = "stored" if result.stored else "already stored (same id): nothing done"
    console.print(f"{event} for {external_id}: {what}", highlight=False)


@tasks_app.command("list")
def tasks_list(
    status: Annotated[str, typer.Option(help="open | closed | all")] = "open",
    limit: int = 100,
) -> None:
    """Tasks, soonest due first."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.tasks import list_tasks

    if status not in ("open", "closed", "all"):
        raise InvalidInput(f"--status must be open, closed or all, not {status!r}")
    chosen: TaskStatus | None = None if status == "all" else status  # type: ignore[assignment]
    with open_engine(load_settings()) as engine:
        tasks = list_tasks(engine, status=chosen, limit=limit)
    for task in tasks:  # one line per task: easy to grep and to read in a narrow terminal
        console.print(
            f"#{task.id}  due {task.due_at:%Y-%m-%d %H:%M}  {task.status}  {task.kind}  "
            f"{task.external_id} ({task.tier}, {task.company or task.customer_name})  "
            f"-> {task.assignee or 'CS team'}  {task.reason}",
            highlight=False,
        )
    if not tasks:
        console.print("no tasks")


@tasks_app.command("close")
def tasks_close(task_id: int) -> None:
    """Close a task."""
    from orchestrator.clock import SystemClock
    from orchestrator.runtime import open_engine
    from orchestrator.services.tasks import close_task

    with open_engine(load_settings()) as engine:
        task = close_task(engine, task_id, clock=SystemClock())
    console.print(f"task {task.id} {task.status}")


@tasks_app.command("notify")
def tasks_notify() -> None:
    """Notify CSMs of open tasks whose notification has not gone out yet."""
    from orchestrator.runtime import build_runtime

    runtime = build_runtime(load_settings())
    try:
        console.print(f"{runtime.notify_now()} task(s) notified")
    finally:
        runtime.close()


@health_app.command("daily")
def health_daily(
    since: Annotated[
        str | None,
        typer.Option(help="ISO 8601; default: where the last run (scheduled or not) stopped"),
    ] = None,
) -> None:
    """Rescore now the customers whose events entered or left a window since the last run.
    (The scheduler does this once a day by itself.)"""
    from orchestrator.runtime import build_runtime
    from orchestrator.scheduling.periodic import Window
    from orchestrator.services.health import run_daily_if_due, run_window
    from orchestrator.usage.events import usage_rules

    runtime = build_runtime(load_settings())
    try:
        if usage_rules(runtime).health is None:
            raise NoHealthDefinition(f"no health.yaml in {runtime.settings.journeys_dir}")
        now = runtime.clock.now()
        if since:
            report = run_window(runtime, Window(_moment(since), now))
        else:
            maybe = run_daily_if_due(runtime, now, every=timedelta(0))
            if maybe is None:
                raise JobAlreadyRunning("another process is running the daily rescoring right now")
            report = maybe
        notified = runtime.notify_now()
    finally:
        runtime.close()
    console.print(
        f"{report.candidates} customer(s) rescored ({report.rows_examined} event rows read, "
        f"{report.newly_actionable} past their first days), "
        f"{len(report.task_ids)} task(s) opened, {notified} notified"
    )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: expected ISO 8601") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--since {text!r}: needs a time-zone offset")
    return moment


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
    )
