"""``stepmail db upgrade``: migrations."""

from __future__ import annotations

import typer

from orchestrator.cli.arguments import utf8_text
from orchestrator.cli.output import console, printable
from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Database migrations.")


@app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from orchestrator.services.admin import upgrade_database
    from orchestrator.startup.preflight import database_problems

    utf8_text("--revision", revision)
    settings = load_settings()
    problems = database_problems(settings.database_url, migrates_itself=True)
    if problems:
        raise ConfigurationError("\n".join(problems))
    upgrade_database(settings.database_url, revision)
    console.print(f"database at {printable(revision)}")


def require_database(settings: Settings) -> None:
    """One line naming STEPMAIL_DATABASE_URL when the database does not answer or is not at
    this release's migration, before a command reads it (not a driver's traceback)."""
    from orchestrator.startup.preflight import database_problems

    problems = database_problems(settings.database_url)
    if problems:
        raise ConfigurationError("\n".join(problems))
