"""``stepmail consent``: the consent records 特定電子メール法 asks a sender to keep."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from orchestrator.errors import FileAccessError

app = typer.Typer(no_args_is_help=True, help="Consent records (特定電子メール法).")
_console = Console(stderr=True, soft_wrap=True)


@app.command("export")
def export(
    format: Annotated[Literal["csv", "json"], typer.Option("--format", help="csv or json")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
) -> None:
    """Every consent record with its customer, oldest first."""
    from orchestrator.db.engine import make_engine
    from orchestrator.recipients.consent import consent_rows, to_csv, to_json
    from orchestrator.settings import load_settings

    engine = make_engine(load_settings().database_url)
    try:
        with engine.connect() as connection:
            rows = list(consent_rows(connection))
    finally:
        engine.dispose()
    text = to_csv(rows) if format == "csv" else to_json(rows)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(f"{out}: cannot write: {exc.strerror}") from None
    _console.print(f"{len(rows)} consent record(s) written to {out}", highlight=False)
