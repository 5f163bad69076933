"""Dramatiq forks the worker group's metrics server from its main process once the worker
processes are ready, and that process imports the module of the function it runs: it must
not import the send path, whose ~1 s of CPU would be taken from the worker processes as they
take their first messages."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.processes.worker import WorkerLifecycle

SEND_PATH = ("orchestrator.runtime", "orchestrator.services.delivery", "sqlalchemy", "jinja2")


def test_the_fork_process_imports_none_of_the_send_path() -> None:
    [fork] = WorkerLifecycle().forks
    probe = (
        "import importlib, sys; "
        f"importlib.import_module({fork.__module__!r}); "
        f"print(' '.join(name for name in {SEND_PATH!r} if name in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
    assert fork.__name__ == "serve_worker_metrics"
