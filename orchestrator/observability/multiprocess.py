"""Where the processes of one worker group share their metric files. Imports nothing that
imports prometheus_client: the variable must be set before that library is first imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def group_metrics_dir() -> Path:
    """Where the processes of a plain ``dramatiq workers`` group (not started by ``stepmail
    worker``) share metric files: named after the group's main process, their common parent."""
    folder = Path(tempfile.gettempdir()) / f"stepmail-metrics-{os.getppid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def use_group_metrics_dir() -> None:
    """Set the folder for this process unless the entry point already did."""
    if MULTIPROC_ENV not in os.environ:
        os.environ[MULTIPROC_ENV] = str(group_metrics_dir())
