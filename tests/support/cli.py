"""The ``stepmail`` command run as an operator runs it, on a throwaway installation: a migrated
SQLite file, copies of the test journeys and the shipped templates (a test may edit them), an
outbox; what a run prints, and how many rows a table holds after it."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from tests.support.environment import ROOT, STANDARD_JOURNEYS


def cli_installation(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh installation under ``tmp_path``."""
    env = cli_files(tmp_path)
    upgrade(env["STEPMAIL_DATABASE_URL"])
    return env


def cli_files(tmp_path: Path, journeys_from: Path = STANDARD_JOURNEYS) -> dict[str, str]:
    """:func:`cli_installation` before its database exists: for commands that read only the
    files (``check``). ``journeys_from``: the tests' frozen journeys, or the shipped ones."""
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(journeys_from, journeys)
    shutil.copytree(ROOT / "templates" / "mail", templates)
    return {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def check_problems(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """``stepmail check``'s exit code and its problem lines (``✗ …``), each on one line; a
    traceback fails the test."""
    result = run_cli(env, "check", *args)
    assert "Traceback" not in result.output
    problems = [line[2:] for line in result.output.splitlines() if line.startswith("✗ ")]
    return result.exit_code, problems


def run_cli(env: dict[str, str], *args: str) -> Result:
    """One command, wide enough that no line wraps; an exception other than the command's exit
    (a traceback for the operator) fails the test."""
    result = CliRunner().invoke(app, list(args), env={**env, "COLUMNS": "300"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def invoke(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """The exit code and the non-blank lines printed (stdout and stderr)."""
    result = run_cli(env, *args)
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def count(env: dict[str, str], table: object) -> int:
    """The rows ``table`` holds in the installation's database."""
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        number: int = connection.execute(select(func.count()).select_from(table)).scalar_one()  # type: ignore[arg-type]
    engine.dispose()
    return number
