"""The ``stepmail`` command, one module per command group (``cli/app.py`` is the root group and
the one error handler). ``stepmail = "orchestrator.cli:main"`` is the entry point."""

from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
