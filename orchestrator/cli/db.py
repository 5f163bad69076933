"""``stepmail db upgrade``: migrations."""

from __future__ import annotations

import typer

from orchestrator.cli.output import console
from orchestrator.errors import ConfigurationError
from orchestrator.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="Database migrations.")


@app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from orchestrator.services.admin import upgrade_database
    from orchestrator.startup.preflight import database_problems

    settings = load_settings()
    problems = database_problems(settings.database_url, migrates_itself=True)
    if problems:
        raise ConfigurationError("\n".join(problems))
    upgrade_database(settings.database_url, revision)
    console.print(f"database at {revision}")
