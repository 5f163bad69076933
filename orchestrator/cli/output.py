"""What every ``stepmail`` command prints to (serving commands log through
:mod:`orchestrator.observability.logging`).

The conventions: results go to stdout, errors and warnings to stderr (so ``| jq`` and ``>``
get only the result); a list command's ``--json`` prints one JSON document (an array, or an
object for a report) and nothing else on stdout; ``--quiet`` (before the command) silences the
informational lines a command prints besides its result, never an error.
"""

from __future__ import annotations

import json
import re
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


# C0 and C1 controls (ESC starts the sequences that recolour, retitle or rewrite a terminal;
# CR returns to the line's start), DEL, Unicode line breaks and the bidirectional overrides
# that make text read in another order than it is stored.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: object) -> str:
    """Stored text as a terminal may show it: each control character as a visible escape
    (``\\x1b``, ``\\r``, ``\\t``), so an address, a reason or a source that came from outside
    (the API, a provider's webhook, a CSV) cannot drive the operator's terminal or split a
    tab-separated line."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))
