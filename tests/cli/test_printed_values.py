"""What a command prints after it wrote is a value from outside (a URL, an external id, a
subject, a path, a server's answer): printed as it is, never read as Rich markup or emoji codes.
``[/x]`` once raised MarkupError after the write: the endpoint stored but its one-time secret
never shown, the event stored and stored again when the operator ran the command once more."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.db.tables import customers, usage_events, webhook_endpoints
from tests.support.cli import cli_installation, count, invoke, run_cli

MARKUP = "[/x]:smile:[/b]"  # a closing tag with nothing to close, an emoji code, another


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_installation(tmp_path)


def test_webhooks_add_shows_the_url_and_the_one_time_secret(env: dict[str, str]) -> None:
    url = f"https://hooks.example.com/{MARKUP}"
    result = run_cli(env, "webhooks", "add", url, "--event", "*")
    assert result.exit_code == 0, result.output
    assert f"endpoint 1  {url}" in result.stdout
    assert re.search(r"^secret  whsec_\S+$", result.stdout, re.MULTILINE), result.stdout
    assert count(env, webhook_endpoints) == 1


def test_track_says_stored_once(env: dict[str, str]) -> None:
    external_id = f"c{MARKUP}"
    code, lines = invoke(
        env, "enroll", "--external-id", external_id, "--email", "c@b.jp", "--name", "T"
    )
    assert code == 0, lines
    assert count(env, customers) == 1
    code, lines = invoke(env, "track", external_id, "login")
    assert code == 0, lines
    assert lines == [f"login for {external_id}: stored"]
    assert count(env, usage_events) == 1


def test_send_test_shows_the_subject_it_sent(env: dict[str, str]) -> None:
    template = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "onboarding" / "welcome.tech.ja.html"
    text = template.read_text("utf-8")
    template.write_text(text.replace("{% block subject %}", "{% block subject %}" + MARKUP, 1))
    code, lines = invoke(env, "send-test", "onboarding", "welcome", "--to", "author@b.jp")
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith(f"sent '[TEST] {MARKUP}"), lines
    assert len(list(Path(env["STEPMAIL_OUTBOX_DIR"]).glob("*.eml"))) == 1


def test_consent_export_names_the_file_it_wrote(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "[" / "x]:smile:"  # the path reads [/x]:smile:
    folder.mkdir(parents=True)
    out = folder / "consent.csv"
    result = run_cli(env, "consent", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"0 consent record(s) written to {out}\n"
    assert out.exists()


def test_status_shows_a_server_s_answer_as_it_is(env: dict[str, str], tmp_path: Path) -> None:
    """Redis's answer names the socket path; it was read as markup in the redis row and again
    in the attention line."""
    socket = tmp_path / MARKUP / "redis.sock"
    result = run_cli({**env, "STEPMAIL_REDIS_URL": ""}, "status")  # nothing else is wrong
    assert result.exit_code == 0, result.output
    result = run_cli({**env, "STEPMAIL_REDIS_URL": f"unix://{socket}"}, "status")
    assert result.exit_code == 1, result.output  # Redis not answering needs an operator
    assert f"redis        unreachable: Error 2 connecting to {socket}." in result.stdout
    assert f"attention: Redis unreachable: Error 2 connecting to {socket}." in result.stderr


def test_a_path_that_is_not_utf8_is_shown_escaped(env: dict[str, str], tmp_path: Path) -> None:
    """A file name's byte that is not UTF-8 arrives as a lone surrogate: the file is written
    and its name printed with the byte escaped (writing it raised UnicodeEncodeError)."""
    out = tmp_path / "schema\udcff.json"
    code, lines = invoke(env, "schema", "--out", str(out))
    assert code == 0, lines
    assert lines == [f"{tmp_path}/schema\\udcff.json"]
    assert out.exists()


def test_commands_print_through_the_shared_plain_consoles() -> None:
    """A Console of a command's own reads markup again; colour goes through labelled()."""
    folder = Path(__file__).resolve().parents[2] / "orchestrator" / "cli"
    for path in sorted(folder.glob("*.py")):
        if path.name == "output.py":
            continue
        source = path.read_text("utf-8")
        assert "Console(" not in source and "rich.markup" not in source, path.name
        assert "markup=True" not in source, path.name
