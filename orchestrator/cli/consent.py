"""``stepmail consent``: the consent records 特定電子メール法 asks a sender to keep."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

from orchestrator.cli.arguments import external_id_option
from orchestrator.cli.moments import moment_option
from orchestrator.cli.output import errors, printable
from orchestrator.errors import FileAccessError, InvalidInput

app = typer.Typer(no_args_is_help=True, help="Consent records (特定電子メール法).")


@app.command("export")
def export(
    format: Annotated[Literal["csv", "json"], typer.Option("--format", help="csv or json")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
    customer: Annotated[
        str | None, typer.Option(help="only this customer (their external id)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="consent given at or after: 2026-01-31 or ISO 8601 time")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="consent given before (a date: up to its end)")
    ] = None,
) -> None:
    """Every consent record with its customer, oldest first (or one customer's, in a range)."""
    from orchestrator.runtime import open_engine
    from orchestrator.services.consent import export_consent
    from orchestrator.settings import load_settings

    start = _moment("--since", since, end_of_day=False)
    end = _moment("--until", until, end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("--since must be before --until")
    if customer is not None:
        customer = external_id_option("--customer", customer)
    with open_engine(load_settings()) as engine:
        text, count = export_consent(
            engine, format=format, customer=customer, since=start, until=end
        )
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(f"{out}: cannot write: {exc.strerror}") from None
    errors.print(f"{count} consent record(s) written to {printable(out)}")


def _moment(flag: str, text: str | None, *, end_of_day: bool) -> datetime | None:
    """A date (UTC midnight; for ``--until`` the next one, so the day is included) or an ISO
    8601 time with an offset (without one: UTC)."""
    if text is None:
        return None
    value = text.strip()
    if len(value) != 10:
        return moment_option(flag, value, naive_is_utc=True, expected="a date or ISO 8601 time")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{flag}: not a date or ISO 8601 time: {text[:40]!r}") from None
    midnight = datetime.combine(day, time(0), UTC).isoformat()
    start = moment_option(flag, midnight, typed=value)  # bounded
    return start + timedelta(days=1) if end_of_day else start
