"""Settings that would pass start-up and then break the service at run time (``inf`` in a
sleep, a cooldown that overflows a date), end start-up in a traceback, or send mail without
the sender's details, are refused by ``load_settings`` with one line naming the variable
(probe M4, M5, M7, L6, L9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings, load_settings

NUMBER_SETTINGS = sorted(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (int, float) and name not in ("port", "smtp_port")
)


def refused(**values: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None, **values)
    return str(raised.value)


@pytest.mark.parametrize("name", NUMBER_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", str(10**18)])
def test_every_number_is_finite_and_bounded(name: str, value: str) -> None:
    """The class of M7: no number setting takes infinity, NaN or an absurd size."""
    message = refused(**{name: value})
    assert message.startswith(f"STEPMAIL_{name.upper()}: "), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("dispatch_interval", "1e-9"),  # a busy loop against the database
        ("frequency_cap", "1/99999999999d"),  # OverflowError in timedelta
        ("frequency_cap", "99999999999/day"),
        ("tier_high_threshold", "1e400"),
        ("tier_high_threshold", "NaN"),
    ],
)
def test_values_that_overflowed_or_spun_are_refused(name: str, value: str) -> None:
    assert refused(**{name: value}).startswith(f"STEPMAIL_{name.upper()}")


def test_the_largest_values_allowed_still_work_at_run_time() -> None:
    """The bounds are where the arithmetic still holds: the longest cooldown and
    reconciliation window added to a moment stay in the calendar."""
    settings = load_settings(
        _env_file=None, health_action_cooldown=3650, reconciliation_window=30 * 86400
    )
    now = datetime(2026, 11, 2, tzinfo=UTC)
    assert now + timedelta(days=settings.health_action_cooldown) > now
    assert now + timedelta(seconds=settings.reconciliation_window) > now


@pytest.mark.parametrize(
    "name", ["sender_name", "sender_postal_address", "sender_contact", "default_locale"]
)
@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_identity_or_locale_is_refused_in_every_mode(name: str, blank: str) -> None:
    """M4: a mail without postal address or contact breaks the law it exists to follow."""
    for environment in ("development", "production"):
        message = refused(environment=environment, **{name: blank})
        assert message.startswith(f"STEPMAIL_{name.upper()}: is empty"), message


@pytest.mark.parametrize("name", ["outbox_dir", "journeys_dir", "templates_dir", "database_url"])
def test_a_blank_folder_or_database_is_refused_not_read_as_the_current_folder(name: str) -> None:
    """L9: ``OUTBOX_DIR=`` wrote mail into the working directory."""
    assert refused(**{name: ""}).startswith(f"STEPMAIL_{name.upper()}: is empty")


@pytest.mark.parametrize("name", ["signup_hook_secret", "api_key", "unsubscribe_secret"])
@pytest.mark.parametrize("value", ["a-real-secret-of-ours\n", " a-real-secret-of-ours"])
def test_a_secret_with_surrounding_whitespace_is_refused(name: str, value: str) -> None:
    """L9: a trailing newline from a secrets file made every signed request 401."""
    message = refused(**{name: value})
    assert message.startswith(f"STEPMAIL_{name.upper()}: has whitespace")
    assert "a-real-secret-of-ours" not in message


def test_other_text_is_trimmed() -> None:
    assert load_settings(_env_file=None, sender_name="  Acme  ").sender_name == "Acme"


@pytest.mark.parametrize(
    "url",
    [
        "https://mail.acme-probe.jp/?utm=1",
        "https://mail.acme-probe.jp/?",
        "https://mail.acme-probe.jp/#x",
        "https://admin:hunter2@mail.acme-probe.jp",
        "https://user@mail.acme-probe.jp",
        "https://mail.acme-probe.jp:99999",
        "https://mail.acme-probe.jp:0",
        "javascript:alert(1)//mail.acme-probe.jp",
    ],
)
def test_public_base_url_must_be_a_base_a_path_can_follow(url: str) -> None:
    """M5: ``/unsubscribe/TOKEN`` appended to these lands in a query or a fragment, carries
    credentials into every mail, or names no port."""
    message = refused(public_base_url=url)
    assert message.startswith("STEPMAIL_PUBLIC_BASE_URL: ")
    assert "hunter2" not in message


@pytest.mark.parametrize("url", ["not a url", "ftp://api.sendgrid.com", "https://a:b@x.io"])
def test_sendgrid_api_host_is_one_line_not_a_traceback(url: str) -> None:
    """M7: ``SENDGRID_API_HOST="not a url"`` ended start-up in 147 lines of urllib3."""
    assert refused(sendgrid_api_host=url).startswith("STEPMAIL_SENDGRID_API_HOST: ")


@pytest.mark.parametrize("url", ["not a url", "file:///etc/passwd"])
def test_slack_webhook_url_is_checked_without_showing_it(url: str) -> None:
    message = refused(slack_webhook_url=url)
    assert message.startswith("STEPMAIL_SLACK_WEBHOOK_URL: ")
    assert url not in message


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_the_servers_clock_is_not_a_time_zone(zone: str) -> None:
    """L6: ``localtime`` is /etc/localtime, the server's zone; ``Factory`` is a placeholder."""
    assert refused(default_timezone=zone).startswith("STEPMAIL_DEFAULT_TIMEZONE")


@pytest.mark.parametrize("locale", ["../../etc", "FR", "fr/../x"])
def test_default_locale_has_the_shape_of_a_locale(locale: str) -> None:
    assert refused(default_locale=locale).startswith("STEPMAIL_DEFAULT_LOCALE")


@pytest.mark.parametrize("value", ["v1\r\nx", "a\x00b", "line\u2028break"])
def test_footer_texts_are_one_line(value: str) -> None:
    for name in ("sender_postal_address", "sender_contact", "consent_text_version"):
        assert refused(**{name: value}).startswith(f"STEPMAIL_{name.upper()}")


def test_the_preauth_budget_holds_at_least_one_batch() -> None:
    message = refused(preauth_body_budget=2 * 1024 * 1024, max_batch_body_bytes=4 * 1024 * 1024)
    assert message.startswith("STEPMAIL_PREAUTH_BODY_BUDGET must be at least")


def test_a_worker_that_would_keep_too_many_connections_is_refused() -> None:
    message = refused(
        mail_transport="sendgrid", sendgrid_api_key="SG.key", worker_threads=64,
        sendgrid_in_flight=16,
    )  # fmt: skip
    assert message.startswith("STEPMAIL_WORKER_THREADS × STEPMAIL_SENDGRID_IN_FLIGHT (64 × 16)")
    assert "\n" not in message
    # the same threads with another transport, or with fewer in flight, are fine
    load_settings(_env_file=None, worker_threads=64, sendgrid_in_flight=16)
    load_settings(
        _env_file=None, mail_transport="sendgrid", sendgrid_api_key="SG.key", worker_threads=64,
        sendgrid_in_flight=8,
    )  # fmt: skip
