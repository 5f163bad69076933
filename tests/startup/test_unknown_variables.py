"""A mistyped ``STEPMAIL_*`` variable, in the environment or in ``.env``, is named in a
warning with the closest real setting, instead of being silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.startup.unknown_variables import known_variables, unknown_variable_warnings
from tests.support.processes import development_env, dramatiq_workers

NO_FILE = Path("/nonexistent/.env")


def test_known_variables_are_the_settings() -> None:
    assert "STEPMAIL_DATABASE_URL" in known_variables()
    assert "STEPMAIL_ENVIRONMENT" in known_variables()


def test_a_typo_is_named_with_the_closest_setting() -> None:
    environ = {"STEPMAIL_DATABSE_URL": "x", "STEPMAIL_PORT": "8000", "PATH": "/bin"}
    assert unknown_variable_warnings(environ, NO_FILE) == [
        "STEPMAIL_DATABSE_URL is not a Stepmail setting and is ignored: "
        "did you mean STEPMAIL_DATABASE_URL?"
    ]


def test_names_are_matched_as_pydantic_settings_reads_them() -> None:
    """Case-insensitively: ``stepmail_port`` is a setting, not a typo."""
    assert unknown_variable_warnings({"stepmail_port": "1"}, NO_FILE) == []
    assert unknown_variable_warnings({"stepmail_prot": "1"}, NO_FILE) == [
        "stepmail_prot is not a Stepmail setting and is ignored: did you mean STEPMAIL_PORT?"
    ]


def test_nothing_close_gives_no_guess() -> None:
    assert unknown_variable_warnings({"STEPMAIL_ZZZZZZZZZZZZ": "1"}, NO_FILE) == [
        "STEPMAIL_ZZZZZZZZZZZZ is not a Stepmail setting and is ignored"
    ]


def test_the_test_suites_own_variables_are_not_settings_and_not_warned_about() -> None:
    environ = {"STEPMAIL_TEST_POSTGRES_URL": "x", "STEPMAIL_TEST_REDIS_URL": "y"}
    assert unknown_variable_warnings(environ, NO_FILE) == []


def test_the_env_file_is_read_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "STEPMAIL_JOURNEY_DIR=./flows\nTEMPLATES_DIR=./mail\nSTEPMAIL_PORT=8001\nOTHER=1\n",
        "utf-8",
    )
    assert unknown_variable_warnings({}, env_file) == [
        f"STEPMAIL_JOURNEY_DIR (in {env_file}) is not a Stepmail setting and is ignored: "
        "did you mean STEPMAIL_JOURNEYS_DIR?",
        f"TEMPLATES_DIR in {env_file} is ignored: did you mean STEPMAIL_TEMPLATES_DIR?",
    ]


def test_every_command_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("STEPMAIL_SENDER_EMIAL=hello@relaycloud.co.jp\n", "utf-8")
    result = CliRunner().invoke(app, ["schema"], env={"STEPMAIL_API_KYE": "k" * 32})
    assert result.exit_code == 0
    assert (
        "warning: STEPMAIL_API_KYE is not a Stepmail setting and is ignored: "
        "did you mean STEPMAIL_API_KEY?"
    ) in result.output
    assert "warning: STEPMAIL_SENDER_EMIAL (in .env) is not a Stepmail setting" in result.output


def test_dramatiq_workers_warn_too(tmp_path: Path) -> None:
    stops = {"STEPMAIL_JOURNEYS_DIR": str(tmp_path / "nowhere")}  # so the process ends
    env = {**development_env(tmp_path), "STEPMAIL_QUEUE_NAM": "q", **stops}
    finished = dramatiq_workers(env, tmp_path)
    assert "STEPMAIL_QUEUE_NAM is not a Stepmail setting" in finished.stderr
    assert "did you mean STEPMAIL_QUEUE_NAME?" in finished.stderr
