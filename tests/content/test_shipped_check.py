"""``stepmail check`` passes on the shipped journeys and templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.environment import ROOT

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(ROOT / "journeys", journeys)
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


def test_check_passes_on_the_shipped_journeys(env: dict[str, str]) -> None:
    code, output = invoke(env, "check")
    assert code == 0, output
    # 62 before the customer-success loop; + NPS recovery and promoter (6 each) + three
    # stage-entry journeys (6 each) + the community invitation (6)
    assert "98 mails rendered, no problems" in output
