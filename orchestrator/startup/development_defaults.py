"""The settings that make a trial easy and a production service unsafe: public secrets, demo
or empty identities and example domains (RFC 2606 / RFC 6761), links that a recipient cannot
reach or that are not https, credentials that would travel in clear.

Pure: it reads settings and returns what is still a development default. Production refuses
every item at start-up; development (``make run``) shows them in a warning banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from orchestrator.guards.hosts import ip_of, is_reserved_host, public_host_problem
from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings

__all__ = ["DevelopmentDefault", "development_defaults", "host_of", "is_reserved_host"]

MIN_SECRET_LENGTH = 16

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
    found += _cleartext_problems(settings)
    return found


def is_loopback(host: str) -> bool:
    """A host on this machine: only there may a credential travel without TLS."""
    address = ip_of(host)
    if address is not None:
        return address.is_loopback
    return host.strip().lower().rstrip(".") in ("localhost", "localhost.localdomain")


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
    if value.strip().casefold() == DEVELOPMENT_SIGNUP_HOOK_SECRET:
        return "is the public development secret printed in the source"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters: use a random secret"
    return None


def _identity_problems(settings: Settings) -> list[DevelopmentDefault]:
    found = [
        DevelopmentDefault(f"STEPMAIL_{name.upper()}", f"is the demo value {value!r}")
        for name, value in DEMO_VALUES.items()
        if " ".join(str(getattr(settings, name)).split()).casefold() == value.casefold()
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
    """Settings made sure it is an http(s) URL with a host and nothing a path cannot follow;
    here: one recipients can reach, over https (RFC 8058's one-click POST, and mailbox
    providers' bulk-sender rules, want an https link)."""
    parts = urlsplit(url)
    host_problem = public_host_problem(parts.hostname or "")
    if host_problem:
        return (
            f"is {url!r} ({host_problem}): unsubscribe links must reach this service from a "
            "recipient's mailbox; set the API's public URL"
        )
    if parts.scheme != "https":
        return f"is {url!r}: unsubscribe links in production mail must use https"
    return None


def _cleartext_problems(settings: Settings) -> list[DevelopmentDefault]:
    """A credential that would cross the network without TLS."""
    found: list[DevelopmentDefault] = []
    api = urlsplit(settings.sendgrid_api_host)
    if (
        settings.mail_transport == "sendgrid"
        and api.scheme != "https"
        and not is_loopback(api.hostname or "")
    ):
        found.append(
            DevelopmentDefault(
                "STEPMAIL_SENDGRID_API_HOST",
                f"is {settings.sendgrid_api_host!r}: the API key would travel in clear; use https",
            )
        )
    smtp_tls = settings.smtp_starttls or settings.smtp_ssl
    if (
        settings.mail_transport == "smtp"
        and settings.smtp_username
        and not smtp_tls
        and not is_loopback(settings.smtp_host)
    ):
        found.append(
            DevelopmentDefault(
                "STEPMAIL_SMTP_PASSWORD",
                f"would be sent in clear to {settings.smtp_host}: set STEPMAIL_SMTP_STARTTLS=true "
                "or STEPMAIL_SMTP_SSL=true",
            )
        )
    slack = settings.slack_webhook_url
    if slack is not None:
        url = urlsplit(slack.get_secret_value())
        if url.scheme != "https" and not is_loopback(url.hostname or ""):
            found.append(
                DevelopmentDefault(
                    "STEPMAIL_SLACK_WEBHOOK_URL",
                    "is not an https URL: the webhook's secret path would travel in clear",
                )
            )
    return found
