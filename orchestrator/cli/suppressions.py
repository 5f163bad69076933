"""``stepmail suppressions list|add|remove``: the suppression list from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from orchestrator.clock import SystemClock
from orchestrator.db.engine import make_engine
from orchestrator.errors import InvalidInput, NotSuppressed
from orchestrator.recipients.suppression import (
    MANUAL,
    find_suppression,
    list_suppressions,
    suppress,
    unsuppress,
)
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="The addresses no journey may mail.")
_EMAIL = TypeAdapter(EmailStr)


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(load_settings().database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _valid_email(email: str) -> str:
    try:
        return str(_EMAIL.validate_python(email)).lower()
    except ValidationError:
        raise InvalidInput(f"EMAIL: not a valid address: {email!r}") from None


@app.command("list")
def list_command(
    reason: Annotated[str | None, typer.Option(help="only this reason, e.g. bounce")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
) -> None:
    """Print suppressed addresses: email, reason, source, since when (tab-separated)."""
    with _session() as session:
        entries = list_suppressions(session, reason=reason, limit=limit)
    for entry in entries:
        line = f"{entry.email}\t{entry.reason}\t{entry.source}\t{entry.created_at.isoformat()}"
        typer.echo(line)
    if not entries:
        typer.echo("no suppressed addresses")


@app.command("add")
def add_command(
    email: str,
    reason: Annotated[str, typer.Option(help="why (kept for the audit trail)")] = MANUAL,
    source: Annotated[str, typer.Option(help="who or what asked")] = "cli",
) -> None:
    """Stop mailing EMAIL from every journey."""
    address = _valid_email(email)
    if not reason.strip() or len(reason) > 50:
        raise InvalidInput("--reason: must be 1 to 50 characters")
    with _session() as session:
        added = suppress(session, address, reason, source, SystemClock().now())
        entry = find_suppression(session, address)
    assert entry is not None
    if added:
        typer.echo(f"suppressed {address} ({entry.reason})")
    else:
        typer.echo(f"{address} was already suppressed ({entry.reason})")


@app.command("remove")
def remove_command(email: str) -> None:
    """Lift the suppression of EMAIL (and forget its soft bounces)."""
    address = email.strip().lower()
    with _session() as session:
        removed = unsuppress(session, address)
    if not removed:
        raise NotSuppressed(address)
    typer.echo(f"removed {address}")
