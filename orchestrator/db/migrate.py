"""Run Alembic migrations from code, for ``stepmail db upgrade``, ``stepmail run`` and tests.

The migrations live in the repository's top-level ``alembic/`` folder. A built wheel carries
them as ``orchestrator/_migrations`` (``setup.py`` maps the folder there), so an installed
``stepmail db upgrade`` works with no checkout; from a checkout (editable install, tests) the
folder itself is used.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command
from orchestrator.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
INSTALLED_MIGRATIONS = PACKAGE_DIR / "_migrations"
CHECKOUT_MIGRATIONS = PACKAGE_DIR.parent / "alembic"


def migrations_dir(
    candidates: tuple[Path, ...] = (INSTALLED_MIGRATIONS, CHECKOUT_MIGRATIONS),
) -> Path:
    """The first folder that holds an Alembic ``env.py``: the wheel's copy, else the checkout's."""
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise ConfigurationError(f"the database migrations are missing (looked in {looked})")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run at every start."""
    command.upgrade(alembic_config(database_url), revision)


def head_revisions() -> set[str]:
    """The Alembic head(s) this release migrates to."""
    from alembic.script import ScriptDirectory  # imported late: importing Alembic logs at INFO

    return set(ScriptDirectory.from_config(alembic_config("")).get_heads())
