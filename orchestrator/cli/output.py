"""What every ``stepmail`` command prints to (serving commands log through
:mod:`orchestrator.observability.logging`).

The conventions: results go to stdout, errors and warnings to stderr (so ``| jq`` and ``>``
get only the result); a list command's ``--json`` prints one JSON document (an array, or an
object for a report) and nothing else on stdout; ``--quiet`` (before the command) silences the
informational lines a command prints besides its result, never an error.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(soft_wrap=True)  # paths and file:line messages stay on one line
errors = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON (one document on stdout) instead of text.")
]


class _Verbosity:
    quiet = False


verbosity = _Verbosity()


def print_json(document: Any) -> None:
    """One JSON document on stdout: UTF-8, no colour, no wrapping, dates as ISO 8601."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=_plain) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """An informational line (a count, a summary) on stderr, unless ``--quiet``."""
    if not verbosity.quiet:
        errors.print(message, highlight=False)


def _plain(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return str(value)
