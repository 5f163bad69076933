"""``stepmail programs attendance FILE --program ID``: who attended a session, from a CSV, as
program_attended events (all rows or none; the same file again changes nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import usage_events
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.services.test_programs import PROGRAMS
from tests.support.environment import make_settings
from tests.support.journeys import standard_with
from tests.support.signups import post_signup, signup_payload

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(tmp_path / "journeys", {"programs.yaml": PROGRAMS})
    return make_settings(tmp_path, database_url, journeys_dir=folder)


def attended(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(usage_events.c.properties).where(usage_events.c.name == "program_attended")
        ).scalars()
        return [row["program"] for row in rows]


def test_attendance_comes_back_from_a_csv(
    client: TestClient, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    for who in ("amy", "bob"):
        post_signup(client, signup_payload(who, tier="low"))
    env = {
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
    }
    good = tmp_path / "attended.csv"
    good.write_text("external_id,name\namy,Amy\nbob,Bob\n", "utf-8")
    command = ["programs", "attendance", str(good), "--program", "small-session"]

    first = runner.invoke(app, command, env=env)
    assert first.exit_code == 0, first.output
    assert "2 attendance(s) recorded" in first.output
    again = runner.invoke(app, command, env=env)
    assert "0 attendance(s) recorded, 2 already known" in again.output
    assert attended(runtime) == ["small-session", "small-session"]

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("external_id\namy\nnobody\n", "utf-8")
    refused = runner.invoke(
        app, ["programs", "attendance", str(unknown), "--program", "small-session"], env=env
    )
    assert refused.exit_code != 0 and "nobody" in refused.output
    headerless = tmp_path / "bad.csv"
    headerless.write_text("who\namy\n", "utf-8")
    bad = runner.invoke(
        app, ["programs", "attendance", str(headerless), "--program", "small-session"], env=env
    )
    assert bad.exit_code == 2 and "bad.csv:1: the header has no external_id column" in bad.output
    no_such = runner.invoke(
        app, ["programs", "attendance", str(good), "--program", "nope"], env=env
    )
    assert no_such.exit_code == 2 and "--program 'nope'" in no_such.output
    assert len(attended(runtime)) == 2
