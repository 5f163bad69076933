"""The ``stepmail`` command. Each command is thin: it builds what it needs and calls a service."""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer
from typer._click.core import Context as ClickContext  # typer vendors click since 0.26
from typer.core import TyperGroup

from orchestrator.cli import (
    analytics,
    consent,
    db,
    enroll,
    health,
    journeys,
    plan,
    processes,
    programs,
    send_test,
    sends,
    status,
    suppressions,
    tasks,
    track,
    users,
    webhooks,
)
from orchestrator.cli.output import console, labelled, verbosity
from orchestrator.errors import InvalidInput, StepmailError


class _StepmailGroup(TyperGroup):
    """The one error handler of the command line: a StepmailError is shown as red lines (one
    per problem) and ends the command with the error's exit code, never a traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        _warn_about_unknown_variables()
        try:
            return super().invoke(ctx)
        except StepmailError as exc:
            _fail(exc)
        except Exception as exc:
            from orchestrator.services.failures import as_stepmail_error

            known = as_stepmail_error(exc)
            if known is None:
                raise  # a bug: the traceback is what a report needs
            _fail(known)


def _fail(exc: StepmailError) -> NoReturn:
    """Each line with its control characters escaped (printable) and as text, not markup (a
    pattern such as '^[a-z0-9]…' keeps its brackets)."""
    for line in exc.cli_lines():
        labelled("error:", "red", line)
    raise typer.Exit(exc.exit_code) from None


# add_completion: `stepmail --install-completion` / `--show-completion` (bash, zsh, fish, pwsh).
app = typer.Typer(cls=_StepmailGroup, no_args_is_help=True, add_completion=True, help=__doc__)
app.add_typer(db.app, name="db")
app.add_typer(suppressions.app, name="suppressions")
app.add_typer(consent.app, name="consent")
app.add_typer(sends.app, name="sends")
app.add_typer(tasks.app, name="tasks")
app.add_typer(health.app, name="health")
app.add_typer(analytics.app, name="analytics")
app.add_typer(users.app, name="users")
app.add_typer(programs.app, name="programs")
app.add_typer(webhooks.app, name="webhooks")
app.command("track")(track.track)
for command in (
    processes.run,
    processes.api,
    processes.scheduler,
    processes.worker,
    journeys.check,
    journeys.preview,
    journeys.simulate,
    journeys.schema,
    plan.plan,
    enroll.enroll,
    status.status,
):
    app.command()(command)
app.command("send-test")(send_test.send_test_command)


def main() -> None:
    """Console entry point (``stepmail``)."""
    app()


def _print_version(value: bool) -> None:
    if value:
        from orchestrator.version import stepmail_version

        console.print(f"stepmail {stepmail_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Only results and errors: no informational lines or logs."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs (STEPMAIL_LOG_LEVEL=DEBUG).")
    ] = False,
) -> None:
    """Step-mail onboarding journeys by touch tier (``stepmail COMMAND --help``)."""
    if quiet and verbose:
        raise InvalidInput("--quiet and --verbose: choose one")
    verbosity.quiet = quiet
    if quiet or verbose:  # read by every process this command serves or starts
        os.environ["STEPMAIL_LOG_LEVEL"] = "WARNING" if quiet else "DEBUG"


def _warn_about_unknown_variables() -> None:
    """A mistyped STEPMAIL_* name would otherwise be silently ignored."""
    from orchestrator.startup.unknown_variables import unknown_variable_warnings

    for warning in unknown_variable_warnings():
        labelled("warning:", "yellow", warning)
