"""The runtime: the long-lived parts one process shares (settings, engine, journeys, renderer,
transport, clock). Entry points build it; routes, actors and commands receive it."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from orchestrator.clock import Clock, SystemClock
from orchestrator.db.engine import make_engine
from orchestrator.jitter import RandomSource
from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.model import Journey
from orchestrator.rate_limit import SendRateLimiter, build_send_rate_limiter
from orchestrator.rendering.context import SenderIdentity, sender_identity
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.settings import Settings
from orchestrator.transports import make_transport
from orchestrator.transports.base import Transport

if TYPE_CHECKING:  # the console's rules: imported when used, so workers never load them
    from orchestrator.services.accounts import LoginRules
    from orchestrator.services.previews import PreviewRules


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    journeys: dict[str, Journey]
    renderer: MailRenderer
    transport: Transport
    clock: Clock = field(default_factory=SystemClock)
    rate_limiter: SendRateLimiter | None = None  # STEPMAIL_SEND_RATE_LIMIT; None when off
    jitter: RandomSource = field(default_factory=random.Random)  # spreads retries out

    @property
    def sender(self) -> SenderIdentity:
        return sender_identity(self.settings)

    @property
    def preview_rules(self) -> PreviewRules:
        """What previews and test sends need (built per access: tests swap settings)."""
        from orchestrator.services.previews import PreviewRules

        settings = self.settings
        return PreviewRules(self.sender, settings.public_base_url, settings.unsubscribe_mailto)

    @property
    def login_rules(self) -> LoginRules:
        """Console session ends and the login throttle, from settings."""
        from orchestrator.accounts.sessions import SessionRules
        from orchestrator.accounts.throttle import ThrottleRules
        from orchestrator.services.accounts import LoginRules

        settings = self.settings
        return LoginRules(
            sessions=SessionRules(
                idle=timedelta(seconds=settings.console_idle_timeout),
                lifetime=timedelta(seconds=settings.console_session_lifetime),
            ),
            throttle=ThrottleRules(
                per_account=settings.console_login_attempts,
                per_address=settings.console_login_attempts_per_address,
                window=timedelta(seconds=settings.console_login_window),
            ),
        )

    def close(self) -> None:
        self.transport.close()
        if self.rate_limiter is not None:
            self.rate_limiter.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    jitter: RandomSource | None = None,
) -> Runtime:
    """Load journeys (a broken file stops start-up), connect, and pick the transport."""
    return Runtime(
        settings=settings,
        engine=make_engine(settings.database_url, **pool_options(settings)),
        journeys=load_journeys(settings.journeys_dir),
        renderer=MailRenderer(settings.templates_dir, settings.default_locale),
        transport=transport or make_transport(settings),
        clock=clock or SystemClock(),
        rate_limiter=build_send_rate_limiter(settings),
        jitter=jitter or random.Random(),
    )


def pool_options(settings: Settings) -> dict[str, int]:
    """Connection-pool size for PostgreSQL (SQLite uses SQLAlchemy's defaults)."""
    if settings.database_url.startswith("sqlite"):
        return {}
    return {"pool_size": settings.db_pool_size}


_current: Runtime | None = None
_lock = threading.Lock()


def install_runtime(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one actors use in this process (set by entry points and tests)."""
    global _current
    with _lock:
        _current = runtime


def current_runtime() -> Runtime:
    """The installed runtime; a worker started with ``dramatiq workers`` builds it on first use."""
    global _current
    with _lock:
        if _current is None:
            from orchestrator.settings import get_settings

            _current = build_runtime(get_settings())
        return _current
