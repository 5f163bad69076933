"""Looking after the database itself: migrating it, asking whether it answers, and the
throwaway one ``stepmail simulate`` runs in."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from orchestrator.db import models  # noqa: F401  (registers every table on the metadata)
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.errors import InvalidInput


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (Alembic); safe to run at every start. A revision
    Alembic cannot find is a mistake in what was asked: one line, not Alembic's traceback."""
    from alembic.util import CommandError  # imported late: importing Alembic logs at INFO

    try:
        upgrade(database_url, revision)
    except CommandError as exc:
        raise InvalidInput(f"revision: {exc}") from None
    except AssertionError:  # Alembic asserts on forms it cannot read: '', '@', 'head+1'
        raise InvalidInput(
            f"revision: {revision!r} is not one Alembic can reach (head, or an id such as 0016)"
        ) from None


def ping_database(engine: Engine) -> None:
    """One ``SELECT 1``; a database that does not answer raises (the health check's 500)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def scratch_database(path: Path) -> Engine:
    """A new SQLite database at ``path`` with every table, for a run that leaves no trace."""
    engine = make_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    return engine
