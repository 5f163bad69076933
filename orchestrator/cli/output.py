"""What every ``stepmail`` command prints to (serving commands log through
:mod:`orchestrator.observability.logging`).

The conventions: results go to stdout, errors and warnings to stderr (so ``| jq`` and ``>``
get only the result); a list command's ``--json`` prints one JSON document (an array, or an
object for a report) and nothing else on stdout; ``--quiet`` (before the command) silences the
informational lines a command prints besides its result, never an error.

What is printed is plain text: the two consoles read no markup, no emoji codes and highlight
nothing, because most of what a command prints came from outside (a URL, an external id, a
subject, a path) and Rich would read ``[/x]`` as a closing tag (a ``MarkupError`` after the
command had already written to the database) or ``:smile:`` as an emoji. Colour is only ever a
label's, through :func:`labelled`; a value from outside goes through :func:`printable`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from orchestrator.errors import printable as printable  # shown here with the consoles

# soft_wrap: paths and file:line messages stay on one line.
console = Console(soft_wrap=True, markup=False, emoji=False, highlight=False)
errors = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)

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
    """An informational line (a count, a summary) on stderr, unless ``--quiet``; escaped as
    :func:`printable` (it may name a path or a value from outside)."""
    if not verbosity.quiet:
        errors.print(printable(message))


def labelled(label: str, style: str, message: str, *, to: Console = errors) -> None:
    """``label`` coloured (``error:`` in red), then ``message`` as text escaped as
    :func:`printable`: the one way a command colours a line, built as a ``Text`` so nothing in
    the message is read as markup."""
    to.print(Text.assemble((label, style), " ", printable(message)))


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
