"""The ``stepmail`` command. Each command is thin: it builds what it needs and calls a service."""

from __future__ import annotations

import csv
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import track
from sqlalchemy.orm import Session
from typer._click.core import Context as ClickContext  # typer vendors click since 0.26
from typer.core import TyperGroup

from orchestrator.cli_consent import app as _consent_app
from orchestrator.cli_sends import app as _sends_app
from orchestrator.cli_suppressions import app as _suppressions_app
from orchestrator.cli_usage import health_app, tasks_app
from orchestrator.cli_usage import track as track_command
from orchestrator.errors import ConfigurationError, StepmailError
from orchestrator.settings import Settings, load_settings
from orchestrator.signup import SignupRequest

console = Console(soft_wrap=True)  # paths and file:line messages stay on one line
errors = Console(stderr=True, soft_wrap=True)


class _StepmailGroup(TyperGroup):
    """Shows a StepmailError as red lines (one per problem) and exit code 1, never a traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        _warn_about_unknown_variables()
        try:
            return super().invoke(ctx)
        except StepmailError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                errors.print(f"[red]error:[/red] {line}", highlight=False, markup=True)
            raise typer.Exit(1) from None


# add_completion: `stepmail --install-completion` / `--show-completion` (bash, zsh, fish, pwsh).
app = typer.Typer(cls=_StepmailGroup, no_args_is_help=True, add_completion=True, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")
app.add_typer(_suppressions_app, name="suppressions")
app.add_typer(_consent_app, name="consent")
app.add_typer(_sends_app, name="sends")
app.add_typer(tasks_app, name="tasks")
app.add_typer(health_app, name="health")
app.command("track")(track_command)

TierOption = Annotated[str, typer.Option("--tier", help="high | low | tech")]
LocaleOption = Annotated[str, typer.Option("--locale", help="ja | en | …")]


def main() -> None:
    """Console entry point (``stepmail``)."""
    app()


def _print_version(value: bool) -> None:
    if value:
        from orchestrator.version import stepmail_version

        console.print(f"stepmail {stepmail_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Step-mail onboarding journeys by touch tier (``stepmail COMMAND --help``)."""


def _settings() -> Settings:
    return load_settings()


def _warn_about_unknown_variables() -> None:
    """A mistyped STEPMAIL_* name would otherwise be silently ignored."""
    from orchestrator.startup.unknown_variables import unknown_variable_warnings

    for warning in unknown_variable_warnings():
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, markup=True)


def _logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line a plugin


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from orchestrator.db.migrate import upgrade
    from orchestrator.startup.preflight import database_problems

    settings = _settings()
    problems = database_problems(settings.database_url, migrates_itself=True)
    if problems:
        raise ConfigurationError("\n".join(problems))
    upgrade(settings.database_url, revision)
    console.print(f"database at {revision}")


@app.command()
def run() -> None:
    """All in one: migrate, then API, scheduler and an in-process worker (embedded defaults)."""
    from orchestrator.serve import run_all_in_one

    _logging()
    run_all_in_one(_settings())


@app.command()
def api() -> None:
    """Serve the HTTP API only (scale it separately from schedulers and workers)."""
    from orchestrator.serve import run_api

    _logging()
    run_api(_settings())


@app.command()
def scheduler() -> None:
    """Run the scheduler loop: claim due rows and hand them to Redis. Needs STEPMAIL_REDIS_URL."""
    from orchestrator.serve import run_scheduler_process

    _logging()
    run_scheduler_process(_settings())


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="worker processes", min=1)] = 1,
    threads: Annotated[
        int | None,
        typer.Option(help="threads per process [default: STEPMAIL_WORKER_THREADS]", min=1),
    ] = None,
) -> None:
    """Run Dramatiq workers (same as ``dramatiq workers``). Needs STEPMAIL_REDIS_URL."""
    from orchestrator.startup.gate import check_before_serving, log_development_defaults

    settings = _settings()
    threads = threads or settings.worker_threads
    if not settings.redis_url:
        raise StepmailError("STEPMAIL_REDIS_URL is not set; use `stepmail run` for embedded mode")
    _logging()
    log_development_defaults(check_before_serving(settings))
    argv = [sys.executable, "-m", "dramatiq", "workers"]
    argv += ["--processes", str(processes), "--threads", str(threads)]
    os.execv(sys.executable, argv)  # noqa: S606  (replace this process with Dramatiq's CLI)


@app.command()
def check() -> None:
    """Load every journey and render every step × tier × locale with sample data."""
    from orchestrator.checks import check_all

    settings = _settings()
    problems, rendered = check_all(settings)
    for problem in problems:
        errors.print(f"[red]✗[/red] {problem}", highlight=False)
    if problems:
        errors.print(f"{len(problems)} problem(s)")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {rendered} mails rendered, no problems")


@app.command()
def preview(
    journey: str,
    step: str,
    tier: TierOption = "tech",
    locale: LocaleOption = "ja",
    out: Annotated[Path, typer.Option(help="folder for the files")] = Path("var/preview"),
) -> None:
    """Render one step for a sample customer; writes the HTML and text and prints their paths."""
    from orchestrator.checks import preview_step

    paths = preview_step(_settings(), journey, step, tier, locale, out)
    for path in paths:
        console.print(str(path), highlight=False)


@app.command()
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
) -> None:
    """Run the real pipeline for a sample customer with scripted usage: mails, skips, score
    changes and tasks, day by day. No side effects (a throwaway database, nothing sent)."""
    from orchestrator.simulation import (
        ScriptedEvent,
        format_timeline,
        parse_scripted_event,
        simulate_journey,
    )

    script = [parse_scripted_event(text) for text in event or []]
    if nps is not None:
        script.insert(0, ScriptedEvent(timedelta(0), "nps_submitted", {"score": nps}))
    settings = _settings()
    timeline = simulate_journey(
        settings, journey, tier, locale, days, datetime.now(UTC), script, acv
    )
    console.print(format_timeline(timeline), highlight=False)


@app.command()
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


@app.command()
def enroll(
    csv_file: Annotated[Path | None, typer.Option("--csv", help="CSV with a header row")] = None,
    external_id: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    company: Annotated[str, typer.Option()] = "",
    plan: Annotated[str, typer.Option()] = "",
    annual_contract_value: Annotated[str, typer.Option()] = "0",
    locale: Annotated[str, typer.Option()] = "ja",
    timezone: Annotated[str, typer.Option()] = "Asia/Tokyo",
    tier: Annotated[str | None, typer.Option()] = None,
    csm_name: Annotated[str | None, typer.Option()] = None,
    csm_email: Annotated[str | None, typer.Option()] = None,
    signed_up_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset")] = None,
) -> None:
    """Enroll one customer from flags, or a CSV of them (all rows checked before storing any)."""
    if csv_file is not None:
        signups = _signups_from_csv(csv_file)
    else:
        raw = {
            "external_id": external_id,
            "email": email,
            "name": name,
            "company": company,
            "plan": plan,
            "annual_contract_value": annual_contract_value,
            "locale": locale,
            "timezone": timezone,
            "tier": tier,
            "csm_name": csm_name,
            "csm_email": csm_email,
            "signed_up_at": signed_up_at,
        }
        signups = [_validated(raw, "--")]
    _enroll_all(signups)


def _validated(raw: dict[str, str | None], where: str) -> SignupRequest:
    # A hand-written CSV pads cells ("b1, b1@example.com"); the model trims only after its
    # checks, so spaces and tabs around a cell go here (line breaks stay, and are refused).
    cells = {k: v.strip(" \t") for k, v in raw.items() if v is not None}
    data = {k: v for k, v in cells.items() if v}
    try:
        return SignupRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise StepmailError(problems) from None


def _signups_from_csv(path: Path) -> list[SignupRequest]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise StepmailError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        signups, problems = [], []
        for row in reader:
            try:
                signups.append(_validated(dict(row), f"{path}:{reader.line_num}: "))
            except StepmailError as exc:
                problems.append(str(exc))
    if problems:
        raise StepmailError("\n".join(problems))
    return signups


def _enroll_all(signups: list[SignupRequest]) -> None:
    from orchestrator.enrollment import enroll_signup
    from orchestrator.runtime import build_runtime

    runtime = build_runtime(_settings())
    now = runtime.clock.now()
    created = 0
    with Session(runtime.engine) as session, session.begin():
        for signup in track(
            signups, description="enrolling", console=errors, disable=len(signups) < 2
        ):
            accepted = enroll_signup(session, signup, runtime.journeys, runtime.settings, now)
            created += accepted.created
    runtime.close()
    console.print(f"{len(signups)} customer(s) processed, {created} new")
