"""Settings: a blank value means unset, keys never come from a public default, and the
default public URL follows the port the service listens on."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import SecretStr

from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings, load_settings


def _optional(annotation: Any) -> bool:
    union = get_origin(annotation) in (Union, types.UnionType)
    return union and type(None) in get_args(annotation)


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


OPTIONAL_SETTINGS = sorted(n for n, f in Settings.model_fields.items() if _optional(f.annotation))
SECRET_SETTINGS = sorted(n for n, f in Settings.model_fields.items() if _holds_secret(f.annotation))
BLANKS = ["", " ", "\t", "  \n"]


def settings(**values: Any) -> Settings:
    return load_settings(_env_file=None, **values)


def test_every_secret_and_key_setting_can_be_unset() -> None:
    """So a blank value can mean "none"; a required secret would have to accept an empty one."""
    keylike = {
        n for n in Settings.model_fields if any(w in n for w in ("secret", "key", "password"))
    }
    assert set(SECRET_SETTINGS) <= set(OPTIONAL_SETTINGS)
    assert keylike <= set(OPTIONAL_SETTINGS)
    assert {"api_key", "signup_hook_secret", "unsubscribe_secret", "slack_webhook_url"} <= set(
        SECRET_SETTINGS
    )


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize("name", OPTIONAL_SETTINGS)
def test_a_blank_variable_means_unset(
    monkeypatch: pytest.MonkeyPatch, name: str, blank: str
) -> None:
    monkeypatch.setenv(f"STEPMAIL_{name.upper()}", blank)
    assert getattr(settings(), name) is None
    assert getattr(settings(**{name: blank}), name) is None


def test_the_hook_key_is_the_public_default_only_in_development() -> None:
    assert settings(environment="production").signup_hook_key() == ""
    assert settings(environment="development").signup_hook_key() == DEVELOPMENT_SIGNUP_HOOK_SECRET
    own = settings(environment="production", signup_hook_secret="a-real-secret-of-ours")
    assert own.signup_hook_key() == "a-real-secret-of-ours"


@pytest.mark.parametrize("secret", [None, DEVELOPMENT_SIGNUP_HOOK_SECRET])
@pytest.mark.parametrize("environment", ["development", "production"])
def test_the_unsubscribe_key_never_comes_from_the_public_default(
    environment: str, secret: str | None
) -> None:
    for name in ("signup_hook_secret", "unsubscribe_secret"):
        key = settings(environment=environment, **{name: secret}).signing_secret()
        assert DEVELOPMENT_SIGNUP_HOOK_SECRET not in key
        assert key == settings(environment=environment).signing_secret()  # one per process


def test_the_unsubscribe_key_is_still_derived_from_a_configured_hook_secret() -> None:
    """Links already in mailboxes keep working after an upgrade."""
    derived = settings(signup_hook_secret="a-real-secret-of-ours").signing_secret()
    assert derived == "unsubscribe:a-real-secret-of-ours"
    own = settings(signup_hook_secret="a-real-secret-of-ours", unsubscribe_secret="links-key")
    assert own.signing_secret() == "unsubscribe:links-key"


def test_the_default_public_base_url_follows_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings().public_base_url == "http://127.0.0.1:8000"
    assert settings(port=9000).public_base_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("STEPMAIL_PORT", "9123")
    assert settings().public_base_url == "http://127.0.0.1:9123"
    monkeypatch.setenv("STEPMAIL_PUBLIC_BASE_URL", "")
    assert settings().public_base_url == "http://127.0.0.1:9123"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104
        ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"),
        ("stepmail.internal", "http://stepmail.internal:8000"),
    ],
)
def test_a_wildcard_bind_address_gives_a_loopback_link(host: str, url: str) -> None:
    assert settings(host=host).public_base_url == url


def test_an_explicit_public_base_url_wins() -> None:
    explicit = settings(port=9000, public_base_url=" https://mail.acme.example/ ")
    assert explicit.public_base_url == "https://mail.acme.example/"
