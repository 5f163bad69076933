"""``stepmail check`` catches the author's mistakes that used to pass it and fail later: each
test makes one mistake in a copy of the journeys or templates and expects exit code 1 and
one message naming the file and line."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.cli import check_problems, cli_files
from tests.support.environment import ROOT

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_files(tmp_path)


def check(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    return check_problems(env, *args)


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once and return the (first) line ``new`` is on."""
    text = path.read_text("utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text, "utf-8")
    first = new.splitlines()[0] if new.strip() else new
    return next(i for i, line in enumerate(text.splitlines(), 1) if first in line)


def journey(env: dict[str, str], name: str = "onboarding") -> Path:
    return Path(env["STEPMAIL_JOURNEYS_DIR"]) / f"{name}.yaml"


def template(env: dict[str, str], name: str) -> Path:
    return Path(env["STEPMAIL_TEMPLATES_DIR"]) / name


def test_the_frozen_journeys_pass(env: dict[str, str]) -> None:
    assert check(env) == (0, [])


# -- conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "not usage.seeen('report_created')",
            "usage.seeen is not a usage question; did you mean usage.seen?",
        ),
        (
            "usage.count('login', within='2 weeks') < 3",
            "usage.count: within='2 weeks': expected a duration",
        ),
        (
            "usage.property('nps_submitted') < 7",
            "usage.property(name, key, default=…): missing a required argument: 'key'",
        ),
        (
            "usage.count('login', '14d', 3) < 3",
            "usage.count(name, within=…): too many positional arguments",
        ),
        (
            "usage.property('nps_submitted', 'scor') < 7",
            "the catalogue gives 'nps_submitted' no property 'scor'; did you mean 'score'?",
        ),
        (
            "not usage.seen('report_creatd')",
            "'report_creatd' is not in the event catalogue; did you mean 'report_created'?",
        ),
        ("usage.seen(report_created)", "write the name in quotes"),
        ("customer.plann != 'Trial'", "customer.plann does not exist; did you mean customer.plan?"),
        ("tier == 'hgh'", "'hgh' is not a tier; did you mean 'high'?"),
        ("health.band != 'atrisk'", "'atrisk' is not a health band; did you mean 'at_risk'?"),
        ("health.scor < 50", "health.scor does not exist; did you mean health.score?"),
        ("days_since_sigup > 2", "did you mean 'days_since_signup'?"),
        ("plan | lowr == 'trial'", "no filter 'lowr'; did you mean 'lower'?"),
    ],
)
def test_a_condition_that_would_fail_at_send_time(
    env: dict[str, str], condition: str, message: str
) -> None:
    line = edit(journey(env), "not usage.seen('report_created')", condition)
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{journey(env)}:{line}: steps.4.when: ")
    assert message in problem


def test_an_exit_condition_is_checked_too(env: dict[str, str]) -> None:
    line = edit(
        journey(env), "grace: 24h\n", "grace: 24h\nexit_when: [\"usage.seen('upgrade')\"]\n"
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{journey(env)}:{line + 1}: exit_when.0: usage.seen('upgrade'): "
        "'upgrade' is not in the event catalogue"
    ]


# -- the event catalogue ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "    on_event: report_created",
            "    on_event: report_creatd",
            "steps.2.on_event",
            "'report_creatd' is not in the event catalogue; did you mean 'report_created'?",
        ),
        (
            "goal: subscription_upgraded",
            "goal: subscription_upgradd",
            "goal",
            "'subscription_upgradd' is not in the event catalogue; "
            "did you mean 'subscription_upgraded'?",
        ),
        (
            "exit_on_events: [subscription_cancelled]",
            "exit_on_events: [subscription_canceled]",
            "exit_on_events.0",
            "'subscription_canceled' is not in the event catalogue; "
            "did you mean 'subscription_cancelled'?",
        ),
        (
            "trigger: signup",
            "trigger: sign_up",
            "trigger",
            "'sign_up' is neither signup, manual nor an event in the catalogue; "
            "did you mean 'signup'?",
        ),
        (
            "    description: Answers to the questions",
            "    wait_for: {event: report_craeted, timeout: 2d, if_timeout: feedback}\n"
            "    description: Answers to the questions",
            "steps.3.wait_for.event",
            "'report_craeted' is not in the event catalogue; did you mean 'report_created'?",
        ),
    ],
)
def test_every_event_a_journey_names_is_catalogued(
    env: dict[str, str], old: str, new: str, field: str, message: str
) -> None:
    line = edit(journey(env), old, new)
    code, problems = check(env)
    assert code == 1
    assert problems == [f"{journey(env)}:{line}: {field}: {message}"]


def test_a_trigger_property_the_event_does_not_carry(env: dict[str, str]) -> None:
    path = journey(env, "csm_introduction")
    line = edit(path, "properties: {to: high}", "properties: {too: high}")
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line}: trigger.properties.too: the catalogue gives 'tier_changed' no "
        "property 'too'; did you mean 'to'?"
    ]


def test_the_health_score_names_catalogued_events(env: dict[str, str]) -> None:
    path = journey(env, "health")
    line = edit(
        path,
        "    event: support_ticket_opened\n    within: 30d",
        "    event: support_ticket\n    within: 30d",
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line}: components.2.event: 'support_ticket' is not in the event catalogue; "
        "did you mean 'support_ticket_opened'?"
    ]


def test_without_a_catalogue_the_named_events_are_listed(env: dict[str, str]) -> None:
    catalogue = journey(env, "events")
    catalogue.unlink()
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{catalogue}: missing: journeys and the health score name 10 ")
    assert "report_created" in problem and "tier_changed" in problem


def test_a_broken_catalogue_names_its_line(env: dict[str, str]) -> None:
    catalogue = journey(env, "events")
    line = edit(catalogue, "      score: {type: integer", "      score: {type: int")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(f"{catalogue}:{line}: events.nps_submitted.properties.score")


# -- YAML that silently means something else ------------------------------------------------


def test_a_key_written_twice_is_refused_with_both_lines(env: dict[str, str]) -> None:
    line = edit(journey(env), "    after: 7d\n", "    after: 7d\n    after: 8d\n")
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{journey(env)}:{line + 1}: steps.5.after: the key 'after' is written twice "
        f"(lines {line} and {line + 1}); keep one: YAML would silently use the last"
    ]


def test_a_missing_key_is_the_cause_named_first(env: dict[str, str]) -> None:
    path = journey(env, "csm_introduction")
    line = edit(path, "  event: tier_changed\n", "  on: tier_changed\n")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(f"{path}:{line}: trigger: the required key 'event' is missing")


def test_an_unknown_key_gets_the_closest_one(env: dict[str, str]) -> None:
    line = edit(journey(env), "exit_on_events:", "exit_on_event:")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(
        f"{journey(env)}:{line}: exit_on_event: unknown key; did you mean 'exit_on_events'?"
    )


# -- templates -------------------------------------------------------------------------------


def test_template_errors_name_the_file_once_and_the_line_with_a_relative_folder(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default folders are relative (./templates/mail): a syntax error named the folder
    twice, an undefined variable no line."""
    broken = template(env, "onboarding/welcome.tech.ja.html")
    broken.write_text(broken.read_text("utf-8") + "\n{% if %}\n", "utf-8")
    syntax_line = len(broken.read_text("utf-8").splitlines())
    undefined = template(env, "onboarding/faq.low.en.html")
    undefined_line = edit(
        undefined,
        "{{ m.greeting(customer, locale) }}",
        "{{ m.greeting(customer, locale) }} {{ customer.nickname }}",
    )
    monkeypatch.chdir(tmp_path)
    relative = {**env, "STEPMAIL_JOURNEYS_DIR": "journeys", "STEPMAIL_TEMPLATES_DIR": "templates"}
    code, problems = check(relative)
    assert code == 1
    assert [p.split(" (")[0] for p in problems] == [
        f"templates/onboarding/welcome.tech.ja.html:{syntax_line}: "
        "Expected an expression, got 'end of statement block'",
        f"templates/onboarding/faq.low.en.html:{undefined_line}: "
        "'dict object' has no attribute 'nickname'",
    ]


def test_an_undefined_variable_in_a_macro_names_the_macro_file_and_line(
    env: dict[str, str],
) -> None:
    macros = template(env, "layouts/macros.html")
    line = edit(
        macros,
        "{% if csm %}\nBest regards,",
        "{% if csm %}{{ csm.phone }}\nBest regards,",
    )
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(f"{macros}:{line}: 'dict object' has no attribute 'phone'")


def test_a_branch_only_a_customer_without_a_csm_takes_is_rendered(env: dict[str, str]) -> None:
    """High-touch samples have a CSM: the `else` side used to be rendered by no sample."""
    path = template(env, "onboarding/welcome.high.en.html")
    line = edit(path, "{% else %}\n", "{% else %}{{ vars.team_page_url }}\n")
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line}: 'dict object' has no attribute 'team_page_url' "
        "(onboarding/welcome, high, en, no CSM, with csm_booking_url)"
    ]


def test_a_branch_for_an_attribute_a_template_tests_is_rendered(env: dict[str, str]) -> None:
    path = template(env, "onboarding/basics.low.ja.html")
    line = edit(
        path,
        "{% block content %}\n",
        "{% block content %}\n"
        "{% if customer.attributes.get('sso_enabled') %}{{ vars.sso_url }}{% endif %}\n",
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line + 1}: 'dict object' has no attribute 'sso_url' "
        "(onboarding/basics, low, ja, with a CSM, with csm_booking_url, sso_enabled)"
    ]


# -- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("/pricing", "is not an http or https URL, not a relative link"),
        (
            "https://relay example/pricing",
            "is not an http or https URL without spaces or control characters",
        ),
        ("https://relay.example:99999/", "has a port that is not a number from 0 to 65535"),
        ("mailto:", "a mailto: link without a plain address"),
    ],
)
def test_a_link_a_mail_client_cannot_follow(env: dict[str, str], link: str, message: str) -> None:
    path = template(env, "onboarding/faq.tech.en.html")
    line = edit(
        path,
        "{% block content %}\n",
        f'{{% block content %}}\n<p><a href="{link}">Pricing</a></p>\n',
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [f"{path}:{line + 1}: link {link!r} {message} (onboarding/faq)"]


def test_a_link_with_a_scheme_no_client_follows_is_refused_where_rendered(
    env: dict[str, str],
) -> None:
    path = template(env, "onboarding/faq.tech.en.html")
    line = edit(
        path,
        "{% block content %}\n",
        '{% block content %}\n<p><a href="htps://relay.example/pricing">Pricing</a></p>\n',
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line + 1}: <a>: href: a htps: link cannot be in a mail "
        "(onboarding/faq, tech, en, with a CSM, with csm_booking_url)"
    ]


# -- hostile files and messages -------------------------------------------------------------


@pytest.mark.parametrize("name", ["events", "onboarding", "health"])
def test_a_file_nested_thousands_deep_or_huge_is_one_line(env: dict[str, str], name: str) -> None:
    path = journey(env, name)
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n", "utf-8")
    code, problems = check(env)
    assert code == 1
    assert f"{path}: invalid YAML: nested too deeply" in problems
    path.write_text("# padding\n" * 300_000, "utf-8")
    code, problems = check(env)
    assert code == 1
    assert f"{path}: larger than 2 MiB" in problems


BROKEN_YAML = [
    pytest.param("a: 1\nb: x\x0cy\n", 2, "the character U+000C is not allowed", id="form-feed"),
    pytest.param("a: \x00\n", 1, "the character U+0000 is not allowed", id="nul"),
    pytest.param("a: 1\n\nb: \x1b[31m\n", 3, "the character U+001B is not allowed", id="esc"),
    pytest.param("a: x\x7f\n", 1, "the character U+007F is not allowed", id="del"),
    pytest.param("a: 1\nb: [2026-02-30]\n", 2, "cannot read '2026-02-30'", id="no-such-day"),
    pytest.param("a: 0000-01-01\n", 1, "cannot read '0000-01-01': year 0", id="year-0"),
    pytest.param("a: 2026-01-01T00:00:00+99:00\n", 1, "cannot read '2026-01-01T00", id="offset"),
    pytest.param("a: 1\nb: " + "9" * 4400 + "\n", 2, "cannot read '999", id="long-integer"),
    pytest.param("a: !!timestamp 'x'\n", 1, "cannot read 'x': not a valid timestamp", id="ts-tag"),
    pytest.param("a: 1\nb: !!bool 'x'\n", 2, "cannot read 'x': not a valid bool", id="bool-tag"),
    pytest.param("a: !!int ''\n", 1, "cannot read '': not a valid int", id="int-tag"),
    pytest.param("a: !!float '_'\n", 1, "cannot read '_': not a valid float", id="float-tag"),
    pytest.param(  # PyYAML reads base 60 in quadratic time: 800 KB took minutes
        "a: 1\nb: " + ":".join(["1"] * 400_000) + "\n",
        2,
        "cannot read '1:1:1",
        id="base-60",
    ),
]


@pytest.mark.parametrize(("text", "line", "problem"), BROKEN_YAML)
@pytest.mark.parametrize("name", ["events", "onboarding", "health"])
def test_yaml_that_python_cannot_read_is_one_line_at_its_line(
    env: dict[str, str], name: str, text: str, line: int, problem: str
) -> None:
    """A character YAML forbids (PyYAML's ReaderError) or a value its constructors cannot
    build (Python's ValueError: a day that does not exist, year 0, an offset of 99 hours, an
    integer past Python's 4,300 digits) was a traceback from every command reading the file."""
    path = journey(env, name)
    path.write_text(text, "utf-8")
    code, problems = check(env)
    assert code == 1
    assert any(p.startswith(f"{path}:{line}: invalid YAML: {problem}") for p in problems), problems


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_a_journey_that_is_not_a_regular_file_is_refused_unread(
    env: dict[str, str], kind: str
) -> None:
    """``/dev/zero`` was read until the OOM killer came (its size says 0) and a FIFO blocked
    every command that lists the journeys."""
    path = journey(env)
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    code, problems = check(env)
    assert code == 1
    assert f"{path}: cannot read: not a regular file" in problems


@pytest.mark.parametrize("setting", ["STEPMAIL_JOURNEYS_DIR", "STEPMAIL_TEMPLATES_DIR"])
@pytest.mark.parametrize("state", ["missing", "a file", "empty", "a symlink loop"])
def test_a_folder_that_is_missing_or_empty_is_a_problem(
    env: dict[str, str], tmp_path: Path, setting: str, state: str
) -> None:
    """A mistyped ``STEPMAIL_JOURNEYS_DIR`` read as "0 mails rendered, no problems", exit 0:
    the check a pull request relies on passed with nothing checked."""
    folder = tmp_path / "mistyped"
    if state == "a file":
        folder.write_text("", "utf-8")
    elif state == "empty":
        folder.mkdir()
    elif state == "a symlink loop":  # resolving it for the message raised RuntimeError
        folder.symlink_to(folder.name)
    code, problems = check({**env, setting: str(folder)})
    assert code == 1
    assert len(problems) == 1 and problems[0].startswith(f"{setting}: "), problems
    assert str(folder) in problems[0]


LONG_CHAIN = " and ".join(f"usage.count('login') > {n}" for n in range(300))
DEEP_PARENTHESES = "not (" * 100 + "usage.seen('login')" + ")" * 100


@pytest.mark.parametrize("condition", [LONG_CHAIN, DEEP_PARENTHESES])
def test_a_condition_nested_past_what_python_compiles_is_one_line(
    env: dict[str, str], condition: str
) -> None:
    """Three hundred parts joined by ``and`` (Python's parser allows 200 nested parentheses)
    or a hundred nested ones (Jinja's parser recursing past Python's limit) were a
    traceback."""
    line = edit(journey(env), "not usage.seen('report_created')", condition)
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{journey(env)}:{line}: steps.4.when: invalid condition ")
    assert "nested too deeply to compile" in problem
    assert len(problem) < 400  # the condition is cut short, not printed whole


@pytest.mark.parametrize(
    "nested",
    [
        "{% if " + " and ".join(["customer.name"] * 300) + " %}x{% endif %}",  # Python's limit
        "{{ " + "(" * 150 + "customer.name" + ")" * 150 + " }}",  # Jinja's parser recursing
        "{% for a in [1] %}" * 25 + "x" + "{% endfor %}" * 25,  # 20 nested blocks in Python
    ],
)
def test_a_template_nested_past_what_python_compiles_names_its_line(
    env: dict[str, str], nested: str
) -> None:
    path = template(env, "onboarding/faq.low.en.html")
    line = edit(path, "{% block content %}\n", "{% block content %}\n\n\n" + nested + "\n")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(f"{path}:{line + 3}: nested too deeply to compile")


def test_a_template_nested_too_deeply_is_named_once_with_a_relative_folder(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's compiler knows the file, not the template's name: the folder was named twice."""
    path = template(env, "onboarding/faq.low.en.html")
    nested = "{% if " + " and ".join(["customer.name"] * 300) + " %}x{% endif %}"
    line = edit(path, "{% block content %}\n", "{% block content %}\n" + nested + "\n")
    monkeypatch.chdir(tmp_path)
    relative = {**env, "STEPMAIL_JOURNEYS_DIR": "journeys", "STEPMAIL_TEMPLATES_DIR": "templates"}
    code, problems = check(relative)
    assert code == 1
    assert problems[0].startswith(
        f"templates/onboarding/faq.low.en.html:{line + 1}: nested too deeply to compile"
    )


@pytest.mark.parametrize(
    "endless",
    [
        '{% include "onboarding/faq.low.en.html" %}',  # itself
        '{% include "layouts/endless.html" %}',  # through another, which includes it back
        "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(0) }}",
    ],
)
def test_a_template_without_end_names_its_line(env: dict[str, str], endless: str) -> None:
    """A template that includes itself, or a macro that calls itself, recursed until
    Python's limit: a traceback from ``stepmail check`` (and from the worker sending it)."""
    template(env, "layouts/endless.html").write_text(
        '{% include "onboarding/faq.low.en.html" %}\n', "utf-8"
    )
    path = template(env, "onboarding/faq.low.en.html")
    line = edit(path, "{% block content %}\n", "{% block content %}\n" + endless + "\n")
    code, problems = check(env)
    assert code == 1
    # named at the checked template's line, wherever in the cycle Python's limit struck
    [problem] = [p for p in problems if p.startswith(f"{path}:{line + 1}: ")]
    assert "nested without end: " in problem
    if "endless.html" in endless:  # the cycle, from that line round to it again
        cycle = f"(onboarding/faq.low.en.html:{line + 1} → layouts/endless.html:1 → "
        assert cycle in problem and f"onboarding/faq.low.en.html:{line + 1} → …)" in problem


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / (customer.name | length * 0)", "division by zero"),
        ("(customer.name | length + 10.0) ** 400", "Numerical result out of range"),
        ("'x' * 10 ** 9", "makes 1,000,000,000; at most 1,000,000"),  # was folded: 1 GB
        ("(customer.name | length) ** (10 ** 9)", "bits; at most 100,000"),
    ],
)
def test_arithmetic_that_fails_names_its_line(
    env: dict[str, str], expression: str, message: str
) -> None:
    path = template(env, "onboarding/faq.low.en.html")
    line = edit(path, "{% block content %}\n", "{% block content %}\n{{ " + expression + " }}\n")
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{path}:{line + 1}: ") and message in problem


def test_aliases_that_expand_past_any_file_are_refused_at_once(env: dict[str, str]) -> None:
    """Ten aliases of ten aliases ... nine deep (the "billion laughs"): PyYAML builds them as
    shared values, but each walk of the data visited all 10^9 (minutes at 10^8); and an
    alias inside the value it names."""
    path = journey(env)
    original = path.read_text("utf-8")
    laughs = ["x-l0: &l0 [a, b, c, d, e, f, g, h, i, j]"]
    laughs += [f"x-l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, 9)]
    path.write_text("\n".join(laughs) + "\n" + original, "utf-8")
    code, problems = check(env)
    assert code == 1
    assert problems == [f"{path}:5: more than 100,000 values once its YAML aliases are expanded"]
    path.write_text("x-self: &self [a, *self]\n" + original, "utf-8")
    code, problems = check(env)
    assert code == 1
    assert problems == [f"{path}:1: a YAML alias inside the value it names"]


def test_a_mail_gmail_would_clip_is_named_with_its_size(env: dict[str, str]) -> None:
    """Past ~102 KB of HTML Gmail cuts a mail off, and the footer (the sender's address, the
    unsubscribe link) is what goes; the shipped mails are ~12 KB at most."""
    path = template(env, "onboarding/faq.low.en.html")
    edit(
        path,
        "{% block content %}\n",
        "{% block content %}\n<p>" + "Lorem ipsum. " * 9_000 + "</p>\n",
    )
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert re.fullmatch(
        re.escape(f"{path}: renders to ")
        + r"1[2-3]\d KB of HTML; "
        + re.escape(
            "Gmail clips a mail past 102 KB, hiding its end (the sender's address and the "
            "unsubscribe link) (onboarding/faq, low, en)"
        ),
        problem,
    ), problem


def test_brackets_in_a_message_are_printed_not_taken_as_markup(env: dict[str, str]) -> None:
    """The terminal library reads ``[a-z]`` as a style: the pattern vanished from messages."""
    line = edit(journey(env, "events"), "  login:\n", "  Log In:\n")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(
        f"{journey(env, 'events')}:{line}: events.Log In: "
        "String should match pattern '^[a-z0-9][a-z0-9_.:-]*$'"
    )


@pytest.mark.parametrize(
    "name", ["onboarding/faq.low.en.html", "onboarding/faq.low.en.txt", "layouts/mail.css"]
)
def test_a_mail_file_that_is_not_utf8_names_its_line(env: dict[str, str], name: str) -> None:
    """Latin-1 bytes in a template, a text part or the stylesheet were a UnicodeDecodeError."""
    path = template(env, name)
    text = path.read_bytes() if path.exists() else b"{{ customer.name }}\n"
    path.write_bytes(text + b"caf\xe9\n")
    code, problems = check(env)
    assert code == 1
    line = text.count(b"\n") + 1
    assert problems[0].startswith(f"{path}:{line}: not UTF-8 (byte 0xe9); save the file as UTF-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "{% extends",
            '{% extends "layouts/base.html" %}{% extends',
            ":1: extended multiple times",
        ),
        (
            "{% block content %}\n",
            '{% block content %}\n{{ "\\ud800" }}\n',
            ": renders a lone surrogate (U+D800 to U+DFFF",
        ),
    ],
)
def test_a_template_jinja_cannot_finish_names_the_file(
    env: dict[str, str], old: str, new: str, message: str
) -> None:
    """Extending twice (TemplateRuntimeError) and a lone surrogate (a TypeError from the text
    converter) were tracebacks."""
    path = template(env, "onboarding/faq.low.en.html")
    text = path.read_text("utf-8")
    path.write_text(text.replace(old, new, 1), "utf-8")
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{path}{message}")


def test_a_lone_surrogate_in_a_journeys_vars_names_the_template(env: dict[str, str]) -> None:
    edit(journey(env), "vars:\n", 'vars:\n  note: "\\ud800"\n')
    path = template(env, "onboarding/faq.low.en.html")
    edit(path, "{% block content %}\n", "{% block content %}\n{{ vars.note }}\n")
    code, problems = check(env)
    assert code == 1
    [problem] = problems
    assert problem.startswith(f"{path}: renders a lone surrogate (U+D800 to U+DFFF")


def test_a_template_name_too_long_for_the_file_system_is_not_found(env: dict[str, str]) -> None:
    """A 300-character ``template:`` was an OSError (file name too long)."""
    name = "onboarding/" + "f" * 300
    edit(journey(env), "template: onboarding/faq\n", f"template: {name}\n")
    code, problems = check(env)
    assert code == 1
    assert problems
    assert all(
        problem.startswith(f"{template(env, name)}: no HTML template for tier ")
        for problem in problems
    )


# -- values check passed and the runtime could not use ---------------------------------------


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.7e308"])
def test_a_health_weight_that_is_no_finite_number_is_named(env: dict[str, str], value: str) -> None:
    """``weight: .inf`` passed check, then made every score NaN and simulate died on it."""
    path = journey(env, "health")
    line = edit(path, "    weight: 30\n    event: login", f"    weight: {value}\n    event: login")
    code, problems = check(env)
    assert code == 1
    assert problems[0].startswith(f"{path}:{line}: components.0.weight: ")


def test_a_program_starting_at_the_calendars_end_is_named(env: dict[str, str]) -> None:
    """A start in year 9999 passed check; shown in a reader's time zone it overflowed."""
    path = journey(env, "programs")
    shutil.copy(ROOT / "journeys" / "programs.yaml", path)
    line = edit(
        path,
        "starts_at: 2026-12-03T15:00:00+09:00",
        "starts_at: 9999-12-31T23:00:00+00:00",
    )
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line}: programs.0.starts_at: a start from 1970 to 8999, "
        "not 9999-12-31T23:00:00+00:00"
    ]


@pytest.mark.parametrize("name", ["health", "lifecycle", "programs", "events"])
def test_an_optional_file_that_is_a_symlink_loop_is_named(env: dict[str, str], name: str) -> None:
    """``Path.exists`` is False for a loop: check said nothing, simulate died on ELOOP."""
    path = journey(env, name)
    path.unlink(missing_ok=True)
    path.symlink_to(path.name)
    code, problems = check(env)
    assert code == 1
    assert f"{path}: cannot read: Too many levels of symbolic links" in problems
    if name == "events":
        return  # a catalogue that does not load is a warning at run time: no event is flagged
    result = runner.invoke(app, ["simulate", "onboarding", "--days", "1"], env=env)
    assert "Traceback" not in result.output and not isinstance(result.exception, OSError)
    assert f"{path}: cannot read: Too many levels of symbolic links" in result.output
