"""What every ``stepmail`` command prints to, and how serving commands log."""

from __future__ import annotations

import logging

from rich.console import Console

from orchestrator.processes.log_hygiene import install_log_hygiene
from orchestrator.settings import Settings

console = Console(soft_wrap=True)  # paths and file:line messages stay on one line
errors = Console(stderr=True, soft_wrap=True)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Serving commands log at INFO, without secrets or floods (processes/log_hygiene)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_hygiene(settings)
