"""The settings that make a trial easy and a production service unsafe: public secrets, demo
identities and example domains (RFC 2606 / RFC 6761), links to loopback.

Pure: it reads settings and returns what is still a development default. Production refuses
every item at start-up; development (``make run``) shows them in a warning banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from pydantic import SecretStr

from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings

MIN_SECRET_LENGTH = 16
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")

_DEFAULTS = Settings.model_fields
DEMO_VALUES = {
    "sender_name": _DEFAULTS["sender_name"].default,
    "sender_postal_address": _DEFAULTS["sender_postal_address"].default,
}


@dataclass(frozen=True)
class DevelopmentDefault:
    """One setting a production service must not run with, and why."""

    variable: str
    reason: str

    def __str__(self) -> str:
        return f"{self.variable} {self.reason}"


def development_defaults(settings: Settings) -> list[DevelopmentDefault]:
    """Everything still at a development value, in the order the settings table lists them."""
    found = _secret_problems(settings)
    found += _identity_problems(settings)
    link = _base_url_problem(settings.public_base_url)
    if link:
        found.append(DevelopmentDefault("STEPMAIL_PUBLIC_BASE_URL", link))
    return found


def is_reserved_host(host: str) -> bool:
    """Example, test, invalid and loopback names: mail to or links at them never arrive."""
    name = host.lower().rstrip(".").strip("[]")
    try:
        return ip_address(name).is_loopback or ip_address(name).is_unspecified
    except ValueError:
        pass
    if name in RESERVED_TLDS or name.endswith(tuple(f".{tld}" for tld in RESERVED_TLDS)):
        return True
    return any(name == d or name.endswith(f".{d}") for d in RESERVED_DOMAINS)


def host_of(value: str) -> str | None:
    """The domain of an address (``a@b``, ``mailto:a@b``) or the host of a URL; else None."""
    text = value.strip()
    if "://" in text:
        return urlsplit(text).hostname
    if "@" in text:
        return text.rpartition("@")[2].strip(">").split("?")[0] or None
    return None


def _secret_problems(settings: Settings) -> list[DevelopmentDefault]:
    found: list[DevelopmentDefault] = []
    hook, unsubscribe = settings.signup_hook_secret, settings.unsubscribe_secret
    if hook is None:
        found.append(
            DevelopmentDefault(
                "STEPMAIL_SIGNUP_HOOK_SECRET",
                "is unset: set a random secret shared with your signup flow (development "
                "falls back to a public one: anyone can enroll addresses)",
            )
        )
        if unsubscribe is None:
            found.append(
                DevelopmentDefault(
                    "STEPMAIL_UNSUBSCRIBE_SECRET",
                    "is unset, and so is the hook secret it would be derived from: unsubscribe "
                    "links are signed with a key made for this process and stop working with it",
                )
            )
    for variable, secret in (
        ("STEPMAIL_SIGNUP_HOOK_SECRET", hook),
        ("STEPMAIL_UNSUBSCRIBE_SECRET", unsubscribe),
        ("STEPMAIL_API_KEY", settings.api_key),
        ("STEPMAIL_CONSOLE_SECRET", settings.console_secret),
    ):
        weakness = _weakness(secret)
        if weakness:
            found.append(DevelopmentDefault(variable, weakness))
    return found


def _weakness(secret: SecretStr | None) -> str | None:
    if secret is None:
        return None
    value = secret.get_secret_value()
    if value == DEVELOPMENT_SIGNUP_HOOK_SECRET:
        return "is the public development secret printed in the source"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters: use a random secret"
    return None


def _identity_problems(settings: Settings) -> list[DevelopmentDefault]:
    found = [
        DevelopmentDefault(f"STEPMAIL_{name.upper()}", f"is the demo value {value!r}")
        for name, value in DEMO_VALUES.items()
        if getattr(settings, name) == value
    ]
    addresses = {
        "STEPMAIL_SENDER_EMAIL": settings.sender_email,
        "STEPMAIL_SENDER_CONTACT": settings.sender_contact,
        "STEPMAIL_CSM_TEAM_EMAIL": settings.csm_team_email,
        "STEPMAIL_UNSUBSCRIBE_MAILTO": settings.unsubscribe_mailto or "",
    }
    for variable, value in addresses.items():
        host = host_of(value)
        if host is not None and is_reserved_host(host):
            found.append(
                DevelopmentDefault(variable, f"is {value!r}, an example domain: set your own")
            )
    return found


def _base_url_problem(url: str) -> str | None:
    """Settings made sure it is an http(s) URL with a host; here: one recipients can reach."""
    if is_reserved_host(urlsplit(url).hostname or ""):
        return (
            f"is {url!r}: unsubscribe links must reach this service from a recipient's "
            "mailbox; set the API's public URL"
        )
    return None
