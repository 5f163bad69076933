"""``stepmail check``, ``preview``, ``simulate`` and ``schema``: exit codes and what they print."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.cli import cli_files

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_files(tmp_path)


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_check_names_file_and_line_of_a_broken_journey(env: dict[str, str]) -> None:
    path = Path(env["STEPMAIL_JOURNEYS_DIR"]) / "onboarding.yaml"
    path.write_text(path.read_text("utf-8").replace("after: 3d\n", "after: three days\n"), "utf-8")
    code, output = invoke(env, "check")
    assert code == 1
    line = next(
        i for i, text in enumerate(path.read_text("utf-8").splitlines(), 1) if "three days" in text
    )
    assert f"{path}:{line}: steps.3.after: expected a duration" in output


def test_check_names_file_and_line_of_a_broken_template(env: dict[str, str]) -> None:
    path = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "onboarding" / "faq.low.en.html"
    lines = path.read_text("utf-8").splitlines()
    lines[4] = lines[4] + " {{ customer.nickname }}"
    path.write_text("\n".join(lines), "utf-8")
    code, output = invoke(env, "check")
    assert code == 1
    assert f"{path}:5: 'dict object' has no attribute 'nickname'" in output.replace("\n", "")


def test_check_reports_a_template_syntax_error(env: dict[str, str]) -> None:
    path = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "onboarding" / "welcome.tech.ja.html"
    path.write_text(path.read_text("utf-8") + "\n{% if %}\n", "utf-8")
    code, output = invoke(env, "check")
    assert code == 1
    assert "welcome.tech.ja.html" in output and "Traceback" not in output


def test_preview_writes_html_and_text(env: dict[str, str], tmp_path: Path) -> None:
    code, output = invoke(
        env,
        "preview",
        "onboarding",
        "welcome",
        "--tier",
        "high",
        "--locale",
        "en",
        "--out",
        str(tmp_path / "p"),
    )
    assert code == 0, output
    html_path, text_path = (Path(line) for line in output.split())
    assert html_path.read_text("utf-8").startswith(
        "<!DOCTYPE html"
    ) or "<html" in html_path.read_text("utf-8")
    assert text_path.read_text("utf-8").startswith("Subject: ")


def test_preview_of_an_unknown_step_is_a_clear_error(env: dict[str, str]) -> None:
    code, output = invoke(env, "preview", "onboarding", "nope")
    assert code == 3
    assert "journey 'onboarding' has no step 'nope'" in output


def test_simulate_prints_the_timeline_without_side_effects(env: dict[str, str]) -> None:
    code, output = invoke(
        env, "simulate", "onboarding", "--tier", "low", "--locale", "en", "--days", "7"
    )
    assert code == 0, output
    happened, _, pending = output.partition("still pending after day 7:")
    lines = [line.split() for line in happened.strip().splitlines()]
    mails = [parts[6] for parts in lines if parts[5] == "mail"]
    assert mails == [
        "onboarding/welcome",
        "onboarding/basics",
        "onboarding/faq",
        "onboarding/activation_nudge",
        "onboarding/case_studies",
    ]
    assert [line.split()[6] for line in pending.strip().splitlines()] == ["onboarding/feedback"]
    assert not Path(env["STEPMAIL_DATABASE_URL"].removeprefix("sqlite:///")).exists()


def test_simulate_fails_a_mail_whose_text_part_cannot_be_made_and_goes_on(
    env: dict[str, str],
) -> None:
    """A lone surrogate in the HTML surfaced only when the batch made the text parts, past the
    send path's catch: simulate (and a worker) died with a TypeError. The send fails; the
    journey goes on."""
    faq = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "onboarding" / "faq.low.en.html"
    text = faq.read_text("utf-8")
    faq.write_text(text.replace("{% block content %}\n", '{% block content %}{{ "\\ud800" }}\n'))
    code, output = invoke(
        env, "simulate", "onboarding", "--tier", "low", "--locale", "en", "--days", "7"
    )
    assert code == 0, output
    [failed] = [line for line in output.splitlines() if "onboarding/faq" in line]
    assert failed.split()[5] == "failed"
    assert "template: onboarding/faq.low.en.html: renders a lone surrogate" in failed
    assert "onboarding/case_studies" in output


def test_a_bad_setting_names_the_variable(env: dict[str, str]) -> None:
    code, output = invoke({**env, "STEPMAIL_PORT": "eighty"}, "check")
    assert code == 78
    assert "STEPMAIL_PORT" in output and "Traceback" not in output


def test_check_names_the_line_of_a_stylesheet_rule_that_cannot_be_inlined(
    env: dict[str, str],
) -> None:
    path = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "layouts" / "mail.css"
    path.write_text(path.read_text("utf-8") + "\n.content p { color: red; }\n", "utf-8")
    line = len(path.read_text("utf-8").splitlines())
    code, output = invoke(env, "check")
    assert code == 1
    assert f"{path}:{line}: selector '.content p' cannot be inlined" in output.replace("\n", "")


def test_check_names_the_line_of_a_stylesheet_nested_past_what_it_parses(
    env: dict[str, str],
) -> None:
    """tinycss2 parses nested brackets recursively: a hundred thousand were a traceback."""
    path = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "layouts" / "mail.css"
    path.write_text(path.read_text("utf-8") + "\np { color: " + "(" * 100_000 + " }\n", "utf-8")
    line = len(path.read_text("utf-8").splitlines())
    code, output = invoke(env, "check")
    assert code == 1 and "Traceback" not in output
    assert f"{path}:{line}: CSS nested too deeply to parse" in output.replace("\n", "")


def test_preview_open_hands_the_html_to_the_browser_or_says_there_is_none(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    args = ["preview", "onboarding", "faq", "--out", str(tmp_path / "p"), "--open"]
    code, output = invoke(env, *args)
    assert code == 0, output
    assert opened == [(tmp_path / "p" / "onboarding.faq.tech.ja.html").resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    code, output = invoke(env, *args)
    assert code == 0 and "no web browser found; open" in output
