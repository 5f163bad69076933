"""Run Alembic migrations from code, for ``stepmail db upgrade``, ``stepmail run`` and tests."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
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
