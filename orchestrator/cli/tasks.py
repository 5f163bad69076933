"""``stepmail tasks list|close|notify``: the CSM's to-do list from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import JsonFlag, console, info, print_json, printable
from orchestrator.errors import InvalidInput
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.services.tasks import TaskStatus
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="CSM tasks: the hand-off to a human.")


@app.command("list")
def tasks_list(
    status: Annotated[str, typer.Option(help="open | closed | all")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=ROW_ID_MAX, help="at most this many")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Tasks, soonest due first."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.tasks import list_tasks

    if status not in ("open", "closed", "all"):
        raise InvalidInput(f"--status must be open, closed or all, not {status!r}")
    chosen: TaskStatus | None = None if status == "all" else status  # type: ignore[assignment]
    with open_engine(load_settings()) as engine:
        tasks = list_tasks(engine, status=chosen, limit=limit)
    if json_output:
        print_json(tasks)
        return
    for task in tasks:  # one line per task: easy to grep and to read in a narrow terminal
        console.print(
            printable(
                f"#{task.id}  due {task.due_at:%Y-%m-%d %H:%M}  {task.status}  {task.kind}  "
                f"{task.external_id} ({task.tier}, {task.company or task.customer_name})  "
                f"-> {task.assignee or 'CS team'}  {task.reason}"
            )
        )
    if not tasks:
        info("no tasks")


@app.command("close")
def tasks_close(
    task_id: Annotated[int, typer.Argument(min=1, max=ROW_ID_MAX, help="the task's id")],
    reason: Annotated[str | None, typer.Option(help="why, kept with the task")] = None,
) -> None:
    """Close a task; the mails it held are released or cancelled, as their journey says."""
    from orchestrator.clock import SystemClock
    from orchestrator.journeys.loader import load_all
    from orchestrator.runtime import open_engine
    from orchestrator.services.tasks import close_task

    utf8_text("--reason", reason)
    settings = load_settings()
    journeys = load_all(settings.journeys_dir).journeys  # a broken file must not block a close
    with open_engine(settings) as engine:
        task = close_task(engine, task_id, journeys=journeys, clock=SystemClock(), reason=reason)
    console.print(f"task {task.id} {task.status}")


@app.command("notify")
def tasks_notify() -> None:
    """Notify CSMs of open tasks whose notification has not gone out yet."""
    from orchestrator.runtime import build_runtime

    runtime = build_runtime(load_settings())
    try:
        console.print(f"{runtime.notify_now()} task(s) notified")
    finally:
        runtime.close()
