"""``stepmail preview --customer``: a step as one real customer would get it now, from their
current data, and whether a send now would go; on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import audit_log
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
        "STEPMAIL_SENDER_NAME": settings.sender_name,
    }


def preview(settings: Settings, out: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["preview", *args, "--out", str(out)], env=cli_env(settings))
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_the_customer_s_own_tier_locale_and_data_are_rendered(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    payload = signup_payload("acme-7", name="Grace Hopper", locale="en", company="Hopper Labs")
    assert post_signup(client, payload).status_code == 202
    code, out, err = preview(
        settings, tmp_path / "p", "onboarding", "welcome", "--customer", "acme-7"
    )
    assert code == 0, out + err
    html_path, text_path = (Path(line) for line in out.split())
    assert html_path.name == "onboarding.welcome.acme-7.html"
    text = text_path.read_text("utf-8")
    assert text.startswith("Subject: ")
    assert "Hi Grace," in text and "Hopper Labs" in text  # their data, in their language
    assert "acme-7: low touch, locale en" in err
    assert "would not go" not in err


def test_a_step_the_customer_would_not_get_now_says_why(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """activation_nudge's condition is `not usage.seen('report_created')`: after the event the
    preview still shows the mail but says a send now ends without one."""
    assert post_signup(client, signup_payload("acme-8")).status_code == 202
    assert post_events(client, event("acme-8", "report_created")).status_code == 202
    code, out, err = preview(
        settings, tmp_path / "p", "onboarding", "activation_nudge", "--customer", "acme-8"
    )
    assert code == 0, out + err
    assert "note: sent now, this step would not go: condition" in " ".join(err.split())
    code, out, err = preview(settings, tmp_path / "p", "onboarding", "faq", "--customer", "acme-8")
    assert code == 0 and "would not go" not in err


def test_a_customer_outside_the_journey_is_shown_as_if_they_entered_now(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    assert post_signup(client, signup_payload("acme-9")).status_code == 202
    code, out, err = preview(
        settings, tmp_path / "p", "health_tips", "tips", "--customer", "acme-9"
    )
    assert code == 0, out + err
    assert "acme-9 is not in 'health_tips': shown as if they entered it now" in err


def test_unknown_customer_and_conflicting_flags_are_one_line(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    code, _out, err = preview(
        settings, tmp_path / "p", "onboarding", "welcome", "--customer", "nobody"
    )
    assert code != 0
    assert "nobody" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()
    code, _out, err = preview(
        settings, tmp_path / "p", "onboarding", "welcome", "--customer", "x", "--tier", "high"
    )
    assert code != 0
    assert "--tier and --locale are the customer's own with --customer" in err


def test_send_test_for_a_customer_goes_only_to_the_tester_marked_and_audited(
    client: TestClient, settings: Settings, runtime: Runtime
) -> None:
    payload = signup_payload("acme-10", name="Ada Lovelace", locale="en", company="Engines Ltd")
    assert post_signup(client, payload).status_code == 202
    before = set(outbox_files(settings))
    result = runner.invoke(
        app,
        ["send-test", "onboarding", "faq", "--to", "author@acme.example", "--customer", "acme-10"],
        env=cli_env(settings),
    )
    assert result.exit_code == 0, result.output
    [path] = set(outbox_files(settings)) - before
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "author@acme.example" and mail["X-Stepmail-Test"] == "1"
    assert str(mail["Subject"]).startswith("[TEST] ")
    body = mail.get_body(("plain",))
    assert body is not None and "Ada" in body.get_content()  # their data, in English
    # Their address is in the footer text as they would read it, in no header: never mailed.
    assert all("acme-10@" not in str(value) for value in mail.values())
    with runtime.engine.connect() as connection:
        action, details = connection.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.id.desc())
        ).one()
    assert action == "step.test_send"
    assert (details["customer"], details["tier"], details["locale"]) == ("acme-10", "low", "en")
    refused = runner.invoke(
        app,
        [
            "send-test",
            "onboarding",
            "faq",
            "--to",
            "a@acme.example",
            "--customer",
            "x",
            "--tier",
            "high",
        ],
        env=cli_env(settings),
    )
    assert refused.exit_code != 0 and "Traceback" not in refused.output


@pytest.mark.parametrize(
    ("external_id", "message"),
    [
        ("", "--customer: an external id is 1 to 255 characters"),
        ("x" * 256, "--customer: an external id is 1 to 255 characters"),
        ("acme\r\nBcc: x", "--customer: one line of text without control characters (U+000D"),
        ("acme\x00", "--customer: one line of text without control characters (U+0000"),
        ("acme\udce9", "--customer: not UTF-8 text"),  # a Latin-1 byte in a UTF-8 shell
    ],
)
@pytest.mark.parametrize("command", ["preview", "send-test"])
def test_a_hostile_external_id_is_one_line_naming_the_flag(
    settings: Settings, tmp_path: Path, external_id: str, message: str, command: str
) -> None:
    args = ["onboarding", "welcome", "--customer", external_id]
    if command == "send-test":
        args += ["--to", "author@acme.example"]
    result = runner.invoke(app, [command, *args], env=cli_env(settings))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_database_not_migrated_is_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    for command in (
        ["preview", "onboarding", "welcome", "--customer", "acme"],
        ["send-test", "onboarding", "welcome", "--to", "a@acme.example", "--customer", "acme"],
    ):
        result = runner.invoke(app, command, env=cli_env(settings))
        assert result.exit_code == 78
        # One line; the file is named when it does not exist (a check never creates it).
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(
            "error: STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet"
        )
        assert result.stderr.endswith("run `stepmail db upgrade`\n")
