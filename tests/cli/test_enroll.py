"""``stepmail enroll``: customers from flags or a CSV, every row checked before any is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import customers, scheduled_sends
from tests.support.environment import ROOT, STANDARD_JOURNEYS

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(STANDARD_JOURNEYS, journeys)
    shutil.copytree(ROOT / "templates" / "mail", templates)
    return {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_enroll_from_flags_and_from_csv(env: dict[str, str], tmp_path: Path) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    code, output = invoke(
        env, "enroll", "--external-id", "a1", "--email", "a1@example.com", "--name", "A One"
    )
    assert code == 0, output
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name,annual_contract_value,locale\n"
        "b1,b1@example.com,B One,2000000,en\n"
        "b2,b2@example.com,B Two,50000,ja\n",
        encoding="utf-8",
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 0, output
    assert "2 customer(s) processed, 2 new" in output
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar() == 3
        assert connection.execute(select(func.count()).select_from(scheduled_sends)).scalar() == 18
    engine.dispose()


def test_csv_cells_padded_with_spaces_are_read_as_typed(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name,locale\nd1, d1@example.com, D One, en\n", encoding="utf-8"
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 0, output
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        row = connection.execute(select(customers.c.email, customers.c.locale)).one()
    engine.dispose()
    assert tuple(row) == ("d1@example.com", "en")


def test_a_bad_csv_row_names_file_and_line_and_stores_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name\nc1,c1@example.com,C One\nc2,not-an-email,C Two\n", encoding="utf-8"
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 2
    assert f"{csv_path}:3: email:" in output.replace("\n", "")
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar() == 0
    engine.dispose()
