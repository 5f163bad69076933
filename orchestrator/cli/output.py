"""What every ``stepmail`` command prints to, and how serving commands log."""

from __future__ import annotations

import logging
import re

from rich.console import Console

from orchestrator.processes.log_hygiene import install_log_hygiene
from orchestrator.settings import Settings

console = Console(soft_wrap=True)  # paths and file:line messages stay on one line
errors = Console(stderr=True, soft_wrap=True)


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


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Serving commands log at INFO, without secrets or floods (processes/log_hygiene)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_hygiene(settings)
