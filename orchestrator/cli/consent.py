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
    from orchestrator.runtime import open_engine
    from orchestrator.services.consent import export_consent
    from orchestrator.settings import load_settings

    with open_engine(load_settings()) as engine:
        text, count = export_consent(engine, format=format)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(f"{out}: cannot write: {exc.strerror}") from None
    _console.print(f"{count} consent record(s) written to {out}", highlight=False)
