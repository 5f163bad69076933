"""A serving process whose settings point at something missing, unusable or unreachable stops
at once with one line naming the variable: no traceback, no service that enrolls in nothing.

Each test runs the real command in a subprocess with working development settings and one
thing broken."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.settings import load_settings
from orchestrator.startup.preflight import preflight
from tests.support.environment import require_server
from tests.support.processes import (
    Finished,
    development_env,
    dramatiq_workers,
    error_lines,
    free_port,
    stepmail,
)


def assert_one_line(finished: Finished, starts_with: str) -> None:
    assert finished.code == 78, finished.lines  # EX_CONFIG
    assert "Traceback" not in finished.stdout + finished.stderr
    assert finished.lines == error_lines(finished), finished.lines  # nothing but the one line
    assert len(finished.lines) == 1, finished.lines
    assert finished.lines[0].startswith(f"error: {starts_with}"), finished.lines


def file_in_the_way(tmp_path: Path) -> Path:
    """A path below a plain file: even root cannot make a folder there."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    return blocker / "outbox"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("STEPMAIL_JOURNEYS_DIR", "missing", "does not exist"),
        ("STEPMAIL_JOURNEYS_DIR", "empty", "no journey files"),
        ("STEPMAIL_TEMPLATES_DIR", "missing", "does not exist"),
        ("STEPMAIL_TEMPLATES_DIR", "empty", "no templates"),
        ("STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", "garbage!", "is not a base64 public key"),
        ("STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(b"x" * 40).decode(), "is not"),
        ("STEPMAIL_DATABASE_URL", "not a url at all", "is not a database URL"),
        ("STEPMAIL_DATABASE_URL", "mysql://u:secret@127.0.0.1/db", "'mysql' is not supported"),
        ("STEPMAIL_OUTBOX_DIR", "blocked", "cannot write to"),
        ("STEPMAIL_MAIL_TRANSPORT", "sendgrid", "STEPMAIL_SENDGRID_API_KEY must be set"),
    ],
)
def test_the_api_refuses_to_start(tmp_path: Path, variable: str, value: str, says: str) -> None:
    env = development_env(tmp_path)
    if value == "missing":
        value = str(tmp_path / "no-such-folder")
    elif value == "empty":
        (tmp_path / "empty").mkdir()
        value = str(tmp_path / "empty")
    elif value == "blocked":
        value = str(file_in_the_way(tmp_path))
    finished = stepmail("api", env={**env, variable: value}, cwd=tmp_path)
    assert_one_line(finished, variable if variable != "STEPMAIL_MAIL_TRANSPORT" else says)
    assert says in finished.lines[0]
    assert "secret" not in finished.lines[0]  # a password in a URL is never echoed


def test_an_smtp_login_without_a_password_stops_the_api(tmp_path: Path) -> None:
    smtp = {"STEPMAIL_MAIL_TRANSPORT": "smtp", "STEPMAIL_SMTP_USERNAME": "mailer"}
    env = {**development_env(tmp_path), **smtp, "STEPMAIL_SMTP_PASSWORD": ""}
    assert_one_line(stepmail("api", env=env, cwd=tmp_path), "STEPMAIL_SMTP_PASSWORD is unset")


def test_an_unreachable_postgresql_stops_the_api(tmp_path: Path) -> None:
    url = f"postgresql://stepmail:hunter2@127.0.0.1:{free_port()}/stepmail"
    finished = stepmail(
        "api", env={**development_env(tmp_path), "STEPMAIL_DATABASE_URL": url}, cwd=tmp_path
    )
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: cannot connect:")
    assert "hunter2" not in finished.lines[0]


def test_an_unmigrated_database_says_to_run_db_upgrade(tmp_path: Path) -> None:
    env = development_env(tmp_path, migrated=False)
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet")
    assert finished.lines[0].endswith("run `stepmail db upgrade`")


@pytest.mark.postgres
def test_an_unmigrated_postgresql_database_says_so_too(tmp_path: Path) -> None:
    url = require_server("STEPMAIL_TEST_POSTGRES_URL")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS preflight_empty"))
    engine.dispose()
    empty = url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dpreflight_empty"
    finished = stepmail(
        "api", env={**development_env(tmp_path), "STEPMAIL_DATABASE_URL": empty}, cwd=tmp_path
    )
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet")


def test_a_database_behind_the_code_names_both_revisions(tmp_path: Path) -> None:
    env = development_env(tmp_path, migrated=False)
    upgrade(env["STEPMAIL_DATABASE_URL"], "0001")
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: the database is at revision 0001")
    assert "run `stepmail db upgrade`" in finished.lines[0]


def test_a_database_migrated_by_a_newer_release_stops_even_stepmail_run(tmp_path: Path) -> None:
    env = development_env(tmp_path)
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    finished = stepmail("run", env=env, cwd=tmp_path)
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: the database is at revision 9999_future")


def test_stepmail_run_with_a_bad_database_url_gives_one_line(tmp_path: Path) -> None:
    url = f"postgresql://u:p@127.0.0.1:{free_port()}/x"
    env = {**development_env(tmp_path), "STEPMAIL_DATABASE_URL": url}
    assert_one_line(stepmail("run", env=env, cwd=tmp_path), "STEPMAIL_DATABASE_URL: cannot connect")


def test_db_upgrade_with_an_unreachable_database_gives_one_line(tmp_path: Path) -> None:
    url = f"postgresql://u:p@127.0.0.1:{free_port()}/x"
    finished = stepmail("db", "upgrade", env={"STEPMAIL_DATABASE_URL": url}, cwd=tmp_path)
    assert_one_line(finished, "STEPMAIL_DATABASE_URL: cannot connect")


@pytest.mark.parametrize(
    ("redis_url", "says"),
    [
        ("http://127.0.0.1:6379/0", "STEPMAIL_REDIS_URL is not a Redis URL"),
        ("redis://127.0.0.1:{port}/0", "STEPMAIL_REDIS_URL: cannot reach Redis"),
    ],
)
@pytest.mark.parametrize("command", ["scheduler", "worker", "api"])
def test_a_bad_or_unreachable_redis_stops_each_process(
    tmp_path: Path, command: str, redis_url: str, says: str
) -> None:
    env = {**development_env(tmp_path), "STEPMAIL_REDIS_URL": redis_url.format(port=free_port())}
    assert_one_line(stepmail(command, env=env, cwd=tmp_path), says)


def test_dramatiq_workers_stop_with_the_line_too(tmp_path: Path) -> None:
    env = {**development_env(tmp_path), "STEPMAIL_JOURNEYS_DIR": str(tmp_path / "nowhere")}
    finished = dramatiq_workers(env, tmp_path)
    assert finished.code != 0
    assert "Traceback" not in finished.stdout + finished.stderr
    assert error_lines(finished) == [
        f"error: STEPMAIL_JOURNEYS_DIR: {tmp_path / 'nowhere'} does not exist"
    ]


def test_a_broken_journey_file_stops_start_up_with_its_file_and_line(tmp_path: Path) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "onboarding.yaml").write_text("id: onboarding\nsteps: 3\n", "utf-8")
    env = {**development_env(tmp_path), "STEPMAIL_JOURNEYS_DIR": str(journeys)}
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, f"STEPMAIL_JOURNEYS_DIR: {journeys / 'onboarding.yaml'}:")


def test_working_settings_pass(tmp_path: Path) -> None:
    env = development_env(tmp_path)
    settings = load_settings(
        _env_file=None, **{k.removeprefix("STEPMAIL_").lower(): v for k, v in env.items()}
    )
    preflight(settings)


def test_a_scheduler_whose_metrics_port_is_taken_says_so_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **development_env(tmp_path),
            "STEPMAIL_REDIS_URL": require_server("STEPMAIL_TEST_REDIS_URL"),
            "STEPMAIL_SCHEDULER_METRICS_PORT": str(port),
        }
        finished = stepmail("scheduler", env=env, cwd=tmp_path)
    assert finished.code == 78
    assert "Traceback" not in finished.stdout + finished.stderr
    [error] = error_lines(finished)  # after the development defaults' warnings
    assert error.startswith("error: STEPMAIL_SCHEDULER_METRICS_PORT: cannot listen on")


# -- probe L9: checks that passed a service which could not work, or did not name the variable


def test_templates_are_resolved_for_every_journey_step(tmp_path: Path) -> None:
    """One unrelated ``.html`` passed the check, then every send ended ``failed: template``."""
    templates = tmp_path / "templates"
    (templates / "other").mkdir(parents=True)
    (templates / "other" / "note.html").write_text("<p>hi</p>", "utf-8")
    env = {**development_env(tmp_path), "STEPMAIL_TEMPLATES_DIR": str(templates)}
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, f"STEPMAIL_TEMPLATES_DIR: no template in {templates} for ")
    assert "STEPMAIL_DEFAULT_LOCALE 'ja'" in finished.lines[0]


def test_a_default_locale_without_templates_is_refused(tmp_path: Path) -> None:
    """Every other locale falls back to the default one: it must have every template."""
    env = {**development_env(tmp_path), "STEPMAIL_DEFAULT_LOCALE": "fr"}
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, "STEPMAIL_TEMPLATES_DIR: no template in ")
    assert "STEPMAIL_DEFAULT_LOCALE 'fr'" in finished.lines[0]


def test_a_check_does_not_create_the_sqlite_folder(tmp_path: Path) -> None:
    """``stepmail api`` with a SQLite file in a missing folder created the folder."""
    missing = tmp_path / "no" / "such" / "dir"
    env = {**development_env(tmp_path), "STEPMAIL_DATABASE_URL": f"sqlite:///{missing}/x.db"}
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert_one_line(finished, f"STEPMAIL_DATABASE_URL: the folder {missing} does not exist")
    assert not (tmp_path / "no").exists()


def test_an_address_in_use_names_host_and_port(tmp_path: Path) -> None:
    """uvicorn said ``[Errno 98]`` after "Application startup complete", naming no variable."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**development_env(tmp_path), "STEPMAIL_PORT": str(port)}
        for command in ("api", "run"):  # development: the banner's warnings come first
            finished = stepmail(command, env=env, cwd=tmp_path)
            assert finished.code == 78, finished.lines
            assert "Traceback" not in finished.stdout + finished.stderr
            assert error_lines(finished) == [
                f"error: STEPMAIL_HOST/STEPMAIL_PORT: cannot listen on 127.0.0.1:{port}: "
                "Address already in use"
            ]


def test_an_unknown_host_name_is_one_line(tmp_path: Path) -> None:
    env = {
        **development_env(tmp_path),
        "STEPMAIL_HOST": "no-such-host.invalid",
        "STEPMAIL_SIGNUP_HOOK_SECRET": "a-secret-of-this-test",  # a network bind needs one
    }
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert finished.code == 78, finished.lines
    assert "Traceback" not in finished.stdout + finished.stderr
    errors = error_lines(finished)
    assert len(errors) == 1 and errors[0].startswith("error: STEPMAIL_HOST 'no-such-host.invalid'")
