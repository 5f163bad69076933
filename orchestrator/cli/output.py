"""What every ``stepmail`` command prints to (serving commands log through
:mod:`orchestrator.observability.logging`)."""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True)  # paths and file:line messages stay on one line
errors = Console(stderr=True, soft_wrap=True)
