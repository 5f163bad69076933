"""The one call every serving entry point makes before it starts."""

from __future__ import annotations

import logging

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings
from orchestrator.startup.demo_links import demo_links
from orchestrator.startup.development_defaults import (
    DevelopmentDefault,
    development_defaults,
    is_loopback,
)
from orchestrator.startup.preflight import preflight

log = logging.getLogger(__name__)

PRODUCTION_HINT = (
    "STEPMAIL_ENVIRONMENT is production: set the variables above "
    "(or STEPMAIL_ENVIRONMENT=development for a trial)"
)


def check_before_serving(
    settings: Settings, *, migrates_itself: bool = False, serves_http: bool = False
) -> list[DevelopmentDefault]:
    """Refuse development defaults in production, then run the preflight checks.

    Returns what is still a development default (empty in production), for a warning.
    """
    defaults = development_defaults(settings) + demo_links(settings)
    if defaults and not settings.is_development:
        raise ConfigurationError("\n".join([*map(str, defaults), PRODUCTION_HINT]))
    exposed = exposed_development_secret(settings) if serves_http else None
    if exposed:
        raise ConfigurationError(exposed)
    preflight(settings, migrates_itself=migrates_itself)
    return defaults


def exposed_development_secret(settings: Settings) -> str | None:
    """Development mode signs signups with a secret printed in the source: fine on loopback,
    an open door for anyone on the network otherwise."""
    if settings.signup_hook_secret is not None or is_loopback(settings.host):
        return None
    return (
        f"STEPMAIL_HOST is {settings.host!r}, reachable from the network, while the signup hook "
        "accepts the public development secret: set STEPMAIL_SIGNUP_HOOK_SECRET, or serve on "
        "127.0.0.1"
    )


def development_warning(defaults: list[DevelopmentDefault]) -> str:
    """The banner ``make run`` prints: development mode, and what would stop a production start."""
    listed = [f"!!   {item}" for item in defaults] or ["!!   (none left)"]
    lines = [
        "!" * 78,
        "!! DEVELOPMENT MODE (STEPMAIL_ENVIRONMENT=development): not for real customers.",
        "!! Still development defaults (production refuses to start with them):",
        *listed,
        "!" * 78,
    ]
    return "\n".join(lines)


def log_development_defaults(defaults: list[DevelopmentDefault]) -> None:
    """A separate process's short form of the banner: one warning per development default."""
    for item in defaults:
        log.warning("development default: %s", item)
