"""``stepmail suppressions list|add|remove``: the suppression list from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import EmailStr, TypeAdapter, ValidationError

from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import JsonFlag, info, print_json, printable
from orchestrator.clock import SystemClock
from orchestrator.errors import InvalidInput
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.recipients.reasons import MANUAL
from orchestrator.runtime import open_engine
from orchestrator.services.suppressions import (
    add_suppression,
    list_suppressions,
    remove_suppression,
)
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="The addresses no journey may mail.")
_EMAIL = TypeAdapter(EmailStr)


def _valid_email(email: str) -> str:
    try:
        return str(_EMAIL.validate_python(email)).lower()
    except ValidationError:
        raise InvalidInput(f"EMAIL: not a valid address: {email!r}") from None


@app.command("list")
def list_command(
    reason: Annotated[str | None, typer.Option(help="only this reason, e.g. bounce")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=ROW_ID_MAX, help="at most this many, newest first")
    ] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Print suppressed addresses: email, reason, source, since when (tab-separated)."""
    utf8_text("--reason", reason)
    with open_engine(load_settings()) as engine:
        entries = list_suppressions(engine, reason=reason, limit=limit)
    if json_output:
        print_json(entries)
        return
    for entry in entries:
        fields = (entry.email, entry.reason, entry.source, entry.created_at.isoformat())
        typer.echo("\t".join(map(printable, fields)))
    if not entries:
        info("no suppressed addresses")


@app.command("add")
def add_command(
    email: str,
    reason: Annotated[str, typer.Option(help="why (kept for the audit trail)")] = MANUAL,
    source: Annotated[str, typer.Option(help="who or what asked")] = "cli",
) -> None:
    """Stop mailing EMAIL from every journey."""
    utf8_text("EMAIL", email)
    utf8_text("--reason", reason)
    utf8_text("--source", source)
    address = _valid_email(email)
    if not reason.strip() or len(reason) > 50:
        raise InvalidInput("--reason: must be 1 to 50 characters")
    with open_engine(load_settings()) as engine:
        added, entry = add_suppression(
            engine, address, reason=reason, source=source, clock=SystemClock()
        )
    if added:
        typer.echo(f"suppressed {printable(address)} ({printable(entry.reason)})")
    else:
        typer.echo(f"{printable(address)} was already suppressed ({printable(entry.reason)})")


@app.command("remove")
def remove_command(email: str) -> None:
    """Lift the suppression of EMAIL (and forget its soft bounces)."""
    utf8_text("EMAIL", email)
    address = email.strip().lower()
    with open_engine(load_settings()) as engine:
        remove_suppression(engine, address)
    typer.echo(f"removed {printable(address)}")
