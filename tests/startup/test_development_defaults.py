"""Production refuses development defaults (public secrets, demo identities, example domains,
loopback links) with one line per variable; development — what ``make run`` sets — starts
and shows them in a banner; authors' tools need no secrets at all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import ConfigurationError
from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings, load_settings
from orchestrator.startup.development_defaults import development_defaults, is_reserved_host
from orchestrator.startup.gate import check_before_serving
from tests.support.environment import ROOT, STANDARD_JOURNEYS
from tests.support.journeys import own_journeys
from tests.support.processes import (
    PRODUCTION_READY,
    clean_environ,
    development_env,
    dramatiq_workers,
    error_lines,
    free_port,
    stepmail,
)

PRODUCTION = {k.removeprefix("STEPMAIL_").lower(): v for k, v in PRODUCTION_READY.items()}


def production(tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        **PRODUCTION,
        "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "outbox_dir": tmp_path / "outbox",
        "journeys_dir": own_journeys(tmp_path / "journeys"),
        "templates_dir": ROOT / "templates" / "mail",
    }
    values.update(changes)
    return load_settings(_env_file=None, **values)


def refusal(settings: Settings) -> list[str]:
    with pytest.raises(ConfigurationError) as raised:
        check_before_serving(settings)
    return str(raised.value).splitlines()


DEFAULTS = Settings.model_fields
OWN_LINK_KEY = "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("signup_hook_secret", None, "is unset"),
        ("signup_hook_secret", "", "is unset"),
        ("signup_hook_secret", DEVELOPMENT_SIGNUP_HOOK_SECRET, "public development secret"),
        ("signup_hook_secret", "short", "shorter than 16"),
        ("unsubscribe_secret", DEVELOPMENT_SIGNUP_HOOK_SECRET, "public development secret"),
        ("unsubscribe_secret", "tiny", "shorter than 16"),
        ("api_key", "changeme", "shorter than 16"),
        ("console_secret", "tiny", "shorter than 16"),
        ("console_secret", DEVELOPMENT_SIGNUP_HOOK_SECRET, "public development secret"),
        ("sender_name", DEFAULTS["sender_name"].default, "demo value"),
        ("sender_postal_address", DEFAULTS["sender_postal_address"].default, "demo value"),
        ("sender_email", DEFAULTS["sender_email"].default, "example domain"),
        ("sender_email", "hello@mail.example.org", "example domain"),
        ("sender_email", "hello@acme.example", "example domain"),
        ("sender_email", "hello@acme.test", "example domain"),
        ("sender_email", "hello@acme.invalid", "example domain"),
        ("sender_email", "hello@localhost", "example domain"),
        ("sender_contact", DEFAULTS["sender_contact"].default, "example domain"),
        ("sender_contact", "https://www.example.net/contact", "example domain"),
        ("csm_team_email", DEFAULTS["csm_team_email"].default, "example domain"),
        ("unsubscribe_mailto", "mailto:unsubscribe@example.com", "example domain"),
        ("public_base_url", "", "'http://127.0.0.1:8000'"),
        ("public_base_url", "http://localhost:8000", "reach this service"),
        ("public_base_url", "http://[::1]:8000", "reach this service"),
        ("public_base_url", "https://stepmail.example.com", "reach this service"),
        # M5: loopback in other spellings, names no mailbox resolves, plain http
        ("public_base_url", "https://127.1", "loopback"),
        ("public_base_url", "https://0x7f000001", "loopback"),
        ("public_base_url", "https://[::ffff:127.0.0.1]", "loopback"),
        ("public_base_url", "https://0", "loopback"),
        ("public_base_url", "https://localhost.localdomain", "reserved name"),
        ("public_base_url", "https://stepmail", "single-label"),
        ("public_base_url", "https://10.0.0.5", "private"),
        ("public_base_url", "https://stepmail.internal", "never public"),
        ("public_base_url", "http://mail.relaycloud.co.jp", "must use https"),
    ],
)
def test_production_refuses_each_development_default_naming_it(
    tmp_path: Path, variable: str, value: str | None, says: str
) -> None:
    """All else is production-ready (an unset hook secret is tested with a link key of its
    own, so it is the one line), so the line is the variable's, then the hint."""
    settings = production(tmp_path, **{"unsubscribe_secret": OWN_LINK_KEY, variable: value})
    lines = refusal(settings)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"STEPMAIL_{variable.upper()} "), lines
    assert says in lines[0]
    assert lines[1].startswith("STEPMAIL_ENVIRONMENT is production")
    assert "STEPMAIL_ENVIRONMENT=development" in lines[1]


@pytest.mark.parametrize(
    ("changes", "variable", "says"),
    [
        (  # L11: the API key in clear
            {
                "mail_transport": "sendgrid",
                "sendgrid_api_key": "SG.x" * 8,
                "sendgrid_api_host": "http://api.sendgrid.com",
            },
            "STEPMAIL_SENDGRID_API_HOST",
            "in clear",
        ),
        (  # L11: SMTP AUTH without TLS to another machine
            {
                "mail_transport": "smtp",
                "smtp_host": "smtp.relaycloud.co.jp",
                "smtp_username": "u",
                "smtp_password": "pw",
            },
            "STEPMAIL_SMTP_PASSWORD",
            "in clear",
        ),
        (
            {"slack_webhook_url": "http://hooks.slack.com/services/T0/B0/XYZ"},
            "STEPMAIL_SLACK_WEBHOOK_URL",
            "not an https URL",
        ),
    ],
)
def test_production_refuses_credentials_in_clear(
    tmp_path: Path, changes: dict[str, str], variable: str, says: str
) -> None:
    lines = refusal(production(tmp_path, unsubscribe_secret=OWN_LINK_KEY, **changes))
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{variable} ") and says in lines[0], lines
    assert "XYZ" not in lines[0]


@pytest.mark.parametrize(
    "changes",
    [
        {
            "mail_transport": "sendgrid",
            "sendgrid_api_key": "SG.x" * 8,
            "sendgrid_api_host": "http://127.0.0.1:9999",
        },
        {
            "mail_transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_username": "u",
            "smtp_password": "pw",
        },
        {
            "mail_transport": "smtp",
            "smtp_host": "smtp.relaycloud.co.jp",
            "smtp_username": "u",
            "smtp_password": "pw",
            "smtp_starttls": "true",
        },
    ],
)
def test_a_local_relay_or_tls_is_fine(tmp_path: Path, changes: dict[str, str]) -> None:
    settings = production(tmp_path, unsubscribe_secret=OWN_LINK_KEY, **changes)
    assert development_defaults(settings) == []


def test_production_refuses_journeys_that_link_to_demo_domains(tmp_path: Path) -> None:
    """M6: the shipped journeys' links (relay.example) in every production mail."""
    journeys = own_journeys(tmp_path / "edited")
    onboarding = journeys / "onboarding.yaml"
    text = onboarding.read_text("utf-8").replace(
        "https://relaycloud.co.jp/book-a-meeting", "https://relay.example/book-a-meeting"
    )
    onboarding.write_text(text, encoding="utf-8")
    line = 1 + text.splitlines().index("  booking_url: https://relay.example/book-a-meeting")
    lines = refusal(production(tmp_path, unsubscribe_secret=OWN_LINK_KEY, journeys_dir=journeys))
    assert lines[0] == (
        f"STEPMAIL_JOURNEYS_DIR holds demo links: {onboarding}:{line}: vars.booking_url links "
        "to relay.example, which no recipient can reach; set your own links and addresses"
    )
    assert len(lines) == 2


def test_a_demo_link_repeated_by_aliases_is_read_once(tmp_path: Path) -> None:
    """An alias inside the value it names made the walk endless (memory without bound), and
    aliases of aliases repeated a value millions of times: each value is read once."""
    journeys = own_journeys(tmp_path / "edited")
    onboarding = journeys / "onboarding.yaml"
    laughs = ["x-l0: &l0 [https://relay.example/a, *l0]"]
    laughs += [f"x-l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, 9)]
    onboarding.write_text("\n".join(laughs) + "\n" + onboarding.read_text("utf-8"), "utf-8")
    lines = refusal(production(tmp_path, unsubscribe_secret=OWN_LINK_KEY, journeys_dir=journeys))
    assert lines[0].startswith(
        f"STEPMAIL_JOURNEYS_DIR holds demo links: {onboarding}:1: x-l0[0] links to relay.example"
    )


def test_a_demo_link_in_a_template_is_named_but_not_in_a_comment(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "mail", templates)
    welcome = next(templates.rglob("*.html"))
    welcome.write_text(
        "{# see https://docs.example.com #}\n"
        + welcome.read_text("utf-8")
        + '\n<a href="https://acme.test/x">x</a>\n',
        encoding="utf-8",
    )
    lines = refusal(production(tmp_path, unsubscribe_secret=OWN_LINK_KEY, templates_dir=templates))
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"STEPMAIL_TEMPLATES_DIR holds demo links: {welcome}:")
    assert "acme.test" in lines[0] and "docs.example.com" not in lines[0]


def test_development_refuses_the_public_hook_secret_on_a_network_address(
    tmp_path: Path,
) -> None:
    """L11: ``STEPMAIL_HOST=0.0.0.0`` in development served the public hook secret."""
    from orchestrator.db.migrate import upgrade

    settings = load_settings(
        _env_file=None,
        environment="development",
        host="0.0.0.0",  # noqa: S104
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        outbox_dir=tmp_path / "outbox",
        journeys_dir=STANDARD_JOURNEYS,
        templates_dir=ROOT / "templates" / "mail",
    )
    upgrade(settings.database_url)
    check_before_serving(settings)  # the scheduler and workers serve no HTTP
    with pytest.raises(ConfigurationError, match=r"^STEPMAIL_HOST is '0\.0\.0\.0'"):
        check_before_serving(settings, serves_http=True)


def test_without_either_secret_the_unsubscribe_key_is_named_too(tmp_path: Path) -> None:
    lines = refusal(production(tmp_path, signup_hook_secret=None))
    assert lines[0].startswith("STEPMAIL_SIGNUP_HOOK_SECRET is unset")
    assert lines[1].startswith("STEPMAIL_UNSUBSCRIBE_SECRET is unset")
    assert "made for this process" in lines[1]


def test_production_settings_of_ones_own_start(tmp_path: Path) -> None:
    from orchestrator.db.migrate import upgrade

    settings = production(tmp_path, api_key="k" * 32, unsubscribe_mailto="unsub@relaycloud.co.jp")
    upgrade(settings.database_url)
    assert development_defaults(settings) == []
    assert check_before_serving(settings) == []


def test_development_lists_the_defaults_and_starts(tmp_path: Path) -> None:
    from orchestrator.db.migrate import upgrade

    settings = load_settings(
        _env_file=None,
        environment="development",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        outbox_dir=tmp_path / "outbox",
        journeys_dir=STANDARD_JOURNEYS,
        templates_dir=ROOT / "templates" / "mail",
    )
    upgrade(settings.database_url)
    listed = [item.variable for item in check_before_serving(settings)]
    assert listed == [
        "STEPMAIL_SIGNUP_HOOK_SECRET",
        "STEPMAIL_UNSUBSCRIBE_SECRET",
        "STEPMAIL_SENDER_NAME",
        "STEPMAIL_SENDER_POSTAL_ADDRESS",
        "STEPMAIL_SENDER_EMAIL",
        "STEPMAIL_SENDER_CONTACT",
        "STEPMAIL_CSM_TEAM_EMAIL",
        "STEPMAIL_PUBLIC_BASE_URL",
        *["STEPMAIL_JOURNEYS_DIR"] * 5,  # one line per shipped journey with demo links (M6)
    ]


@pytest.mark.parametrize(
    ("host", "reserved"),
    [
        ("example.com", True),
        ("EXAMPLE.ORG.", True),
        ("mail.example.net", True),
        ("acme.example", True),
        ("x.test", True),
        ("y.invalid", True),
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("0.0.0.0", True),  # noqa: S104
        ("example.co.jp", False),
        ("myexample.com", False),
        ("relaycloud.co.jp", False),
        ("203.0.113.10", False),
    ],
)
def test_reserved_hosts(host: str, reserved: bool) -> None:
    assert is_reserved_host(host) is reserved


# -- the real commands -----------------------------------------------------------------------


def production_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    """Production, working in every way but the secrets and identities a test leaves out."""
    env = {**development_env(tmp_path), "STEPMAIL_ENVIRONMENT": "production"}
    env["STEPMAIL_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # never reached
    return {**env, **changes}


@pytest.mark.parametrize("command", ["api", "run", "scheduler", "worker"])
def test_each_serving_command_refuses_the_defaults_in_production(
    tmp_path: Path, command: str
) -> None:
    finished = stepmail(command, env=production_env(tmp_path), cwd=tmp_path)
    assert finished.code == 78  # EX_CONFIG
    assert "Traceback" not in finished.stdout + finished.stderr
    errors = error_lines(finished)
    assert errors == finished.lines, finished.lines
    named = [line.removeprefix("error: ").split(" ")[0] for line in errors]
    assert named == [
        "STEPMAIL_SIGNUP_HOOK_SECRET",
        "STEPMAIL_UNSUBSCRIBE_SECRET",
        "STEPMAIL_SENDER_NAME",
        "STEPMAIL_SENDER_POSTAL_ADDRESS",
        "STEPMAIL_SENDER_EMAIL",
        "STEPMAIL_SENDER_CONTACT",
        "STEPMAIL_CSM_TEAM_EMAIL",
        "STEPMAIL_PUBLIC_BASE_URL",
        *["STEPMAIL_JOURNEYS_DIR"] * 5,  # the standard journeys link to relay.example (M6)
        "STEPMAIL_ENVIRONMENT",
    ]


def test_production_is_the_default_environment(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["STEPMAIL_ENVIRONMENT"]
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert finished.code == 78  # EX_CONFIG
    assert error_lines(finished)[0].startswith("error: STEPMAIL_SIGNUP_HOOK_SECRET is unset")


def test_one_default_left_is_one_line(tmp_path: Path) -> None:
    env = production_env(tmp_path, **PRODUCTION_READY)
    env["STEPMAIL_JOURNEYS_DIR"] = str(own_journeys(tmp_path / "journeys"))
    env["STEPMAIL_CSM_TEAM_EMAIL"] = "cs-team@example.com"
    finished = stepmail("api", env=env, cwd=tmp_path)
    assert finished.code == 78  # EX_CONFIG
    assert error_lines(finished)[0] == (
        "error: STEPMAIL_CSM_TEAM_EMAIL is 'cs-team@example.com', an example domain: set your own"
    )


def test_dramatiq_workers_refuse_the_defaults_in_production(tmp_path: Path) -> None:
    finished = dramatiq_workers(production_env(tmp_path), tmp_path)
    assert finished.code != 0
    assert "Traceback" not in finished.stdout + finished.stderr
    assert error_lines(finished)[0].startswith("error: STEPMAIL_SIGNUP_HOOK_SECRET is unset")


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["preview", "onboarding", "welcome", "--tier", "high", "--locale", "en"],
        ["simulate", "onboarding", "--tier", "low", "--days", "3"],
        ["schema"],
    ],
)
def test_authors_tools_need_no_secrets_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Authors run `stepmail check` in their pull requests' CI, where no secret is set."""
    monkeypatch.chdir(tmp_path)
    env = {
        "STEPMAIL_ENVIRONMENT": "production",
        "STEPMAIL_JOURNEYS_DIR": str(STANDARD_JOURNEYS),
        "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "error" not in result.output.lower()


# -- make run ----------------------------------------------------------------------------------


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """``make run`` as README says, with its files in tmp_path and on a free port: the banner
    it printed (up to the running line), and the environment ``make signup`` needs."""
    env = {
        **clean_environ(),
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'stepmail.db'}",
        "STEPMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "STEPMAIL_PORT": str(free_port()),
    }
    make = ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed"]
    process = subprocess.Popen(
        [*make, "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        banner: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            banner.append(line.rstrip("\n"))
            if "Stepmail is running at" in line:
                break
        yield env, banner
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_make_run_warns_in_a_banner_and_make_signup_still_works(
    tmp_path: Path, make_run: tuple[dict[str, str], list[str]]
) -> None:
    env, banner = make_run
    text = "\n".join(banner)
    assert "DEVELOPMENT MODE (STEPMAIL_ENVIRONMENT=development)" in text
    for variable in ("STEPMAIL_SIGNUP_HOOK_SECRET", "STEPMAIL_SENDER_EMAIL"):
        assert f"!!   {variable} " in text
    port = env["STEPMAIL_PORT"]
    assert f"STEPMAIL_PUBLIC_BASE_URL is 'http://127.0.0.1:{port}'" in text
    signup = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed", "signup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert signup.returncode == 0, signup.stdout + signup.stderr
    assert signup.stdout.startswith("202 ")
    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).raise_for_status()
    outbox = tmp_path / "outbox"
    for _ in range(200):  # the in-process worker sends within a tick or two
        if list(outbox.glob("*.eml")):
            break
        time.sleep(0.1)
    assert list(outbox.glob("*.eml"))
