"""Runtime configuration, read once by entry points from ``STEPMAIL_*`` variables and ``.env``."""

from __future__ import annotations

import secrets
import types
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import ConfigurationError

TransportName = Literal["outbox", "smtp", "sendgrid"]
EnvironmentName = Literal["development", "production"]
LogFormatName = Literal["text", "json"]
LogLevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# Public, so only ever accepted in development: `make run` and `make signup` work with no setup.
DEVELOPMENT_SIGNUP_HOOK_SECRET = "dev-signup-secret-change-me"  # noqa: S105  (public on purpose)


class Settings(BaseSettings):
    """Everything an operator can set. Defaults run the embedded mode: SQLite, no Redis, outbox."""

    model_config = SettingsConfigDict(
        env_prefix="STEPMAIL_", env_file=".env", extra="ignore", frozen=True
    )

    # production (the default): serving processes refuse development defaults at start-up.
    environment: EnvironmentName = "production"

    database_url: str = "sqlite:///./var/stepmail.db"
    redis_url: str | None = None
    mail_transport: TransportName = "outbox"
    outbox_dir: Path = Path("./var/outbox")
    journeys_dir: Path = Path("./journeys")
    templates_dir: Path = Path("./templates/mail")

    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_timeout: float = Field(default=10.0, gt=0)

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = Field(default=10.0, gt=0)

    signup_hook_secret: SecretStr | None = None  # unset: development uses a public default
    signup_hook_tolerance: int = Field(default=300, gt=0, description="seconds")
    unsubscribe_secret: SecretStr | None = None

    sender_name: str = "Stepmail Demo"
    sender_email: str = "onboarding@example.com"
    sender_postal_address: str = "1-2-3 Marunouchi, Chiyoda-ku, Tokyo 100-0005, Japan"
    sender_contact: str = "support@example.com"

    tier_high_threshold: Decimal = Field(default=Decimal(1_000_000), ge=0)
    tier_low_threshold: Decimal = Field(default=Decimal(100_000), ge=0)
    default_locale: str = "ja"
    default_timezone: str = "Asia/Tokyo"

    # The bearer token of the /v1 API (events, customers, tasks, suppressions); unset: /v1 refuses.
    api_key: SecretStr | None = None

    # Request bodies over these are refused with 413 while they stream in (api/body_limit.py).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="every other route")
    max_batch_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="POST /v1/events and /hooks/sendgrid"
    )

    # Delivery (issue: production delivery).
    sendgrid_sandbox: bool = False
    sendgrid_webhook_public_key: str | None = None  # base64, as SendGrid's settings page shows it
    sendgrid_webhook_tolerance: int = Field(default=600, gt=0, description="seconds")
    reconciliation_window: int = Field(
        default=1800, gt=0, description="seconds an unknown send waits for a provider event"
    )
    send_rate_limit: float = Field(default=0, ge=0, description="mails per second; 0 = off")
    soft_bounce_limit: int = Field(default=3, gt=0)
    unsubscribe_mailto: str | None = None
    send_window: str | None = None  # e.g. "Mon-Fri 09:00-18:00", recipient's local time
    quiet_days: str = ""  # comma-separated ISO dates on which nothing is sent
    frequency_cap: str | None = None  # e.g. "1/day,3/week" per customer across journeys
    consent_text_version: str = "signup-terms-v1"

    # Hand-off to humans (issue: usage-driven journeys).
    csm_team_email: str = "cs-team@example.com"
    slack_webhook_url: SecretStr | None = None
    health_action_cooldown: int = Field(default=7, gt=0, description="days")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # After host and port: unset, it is derived from them (see _default_public_base_url).
    public_base_url: str = Field(default="", validate_default=True)
    dispatch_interval: float = Field(default=1.0, gt=0)
    dispatch_batch_size: int = Field(default=500, gt=0)
    dispatch_message_size: int = Field(
        default=25, gt=0, le=100, description="rows per broker message (one worker batch)"
    )
    send_lease: int = Field(default=120, gt=0, le=120, description="seconds; at most two minutes")
    max_send_attempts: int = Field(default=8, gt=0)
    worker_threads: int = Field(default=8, gt=0)
    db_pool_size: int = Field(default=20, gt=0, description="PostgreSQL connections per process")
    queue_name: str = "stepmail"

    # Operations (issue 13): logs, metrics, outgoing webhooks.
    log_format: LogFormatName = Field(
        default="text", description="text: one line; json: one object"
    )
    log_level: LogLevelName = "INFO"
    metrics_host: str = Field(
        default="127.0.0.1", description="where scheduler and worker metrics ports listen"
    )
    scheduler_metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="/metrics and /healthz; 0 = off"
    )
    worker_metrics_port: int = Field(
        default=9102, ge=0, le=65535, description="/metrics and /healthz; 0 = off"
    )
    metrics_dir: Path | None = Field(
        default=None, description="worker processes' shared metric files; unset: a fresh temp dir"
    )
    metrics_token: SecretStr | None = None  # set: the API's /metrics wants this bearer token
    webhook_allow_private: bool = Field(
        default=False, description="allow loopback/private webhook URLs (development always does)"
    )
    webhook_timeout: float = Field(default=10.0, gt=0, le=60, description="seconds per delivery")
    webhook_max_attempts: int = Field(default=10, gt=0, le=50)
    webhook_batch_size: int = Field(default=50, gt=0, le=1000)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("*", mode="before")
    @classmethod
    def _blank_means_unset(cls, value: Any, info: ValidationInfo) -> Any:
        """``STEPMAIL_API_KEY=`` is no key at all, never an empty one that anything matches."""
        if isinstance(value, str) and not value.strip() and _accepts_none(cls, info.field_name):
            return None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str, info: ValidationInfo) -> str:
        """Unset: where this process serves, so links work with ``STEPMAIL_PORT`` alone. Either
        way an http(s) URL: it is the base of every unsubscribe link in a mail."""
        from orchestrator.guards.links import check_web_link

        if not value.strip():
            host, port = info.data.get("host", "127.0.0.1"), info.data.get("port", 8000)
            value = f"http://{_link_host(host)}:{port}"
        return check_web_link(value.strip())

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from orchestrator.customers.timezones import validate_timezone

        return validate_timezone(value)

    @field_validator("send_window", "quiet_days", "frequency_cap", "unsubscribe_mailto")
    @classmethod
    def _parseable_delivery_rule(cls, value: str | None, info: ValidationInfo) -> str | None:
        from orchestrator.journeys.setting_rules import check_delivery_setting

        return check_delivery_setting(info.field_name or "", value)

    @field_validator("sender_name", "sender_email", "csm_team_email")
    @classmethod
    def _header_safe(cls, value: str, info: ValidationInfo) -> str:
        from orchestrator.guards.mail_headers import check_plain_address, refuse_unsafe_characters

        value = refuse_unsafe_characters(value)  # each lands in a From or To header
        return value if info.field_name == "sender_name" else check_plain_address(value)

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    def signup_hook_key(self) -> str:
        """The signup hook's HMAC key: the configured secret; in development only, the public
        default; otherwise empty, and the hook refuses every request."""
        if self.signup_hook_secret is not None:
            return self.signup_hook_secret.get_secret_value()
        return DEVELOPMENT_SIGNUP_HOOK_SECRET if self.is_development else ""

    def signing_secret(self) -> str:
        """The key for unsubscribe tokens: its own setting, else derived from a configured hook
        secret, else a random key for this process. Never from a public default: whoever knows
        the key can unsubscribe anyone."""
        secret = self.unsubscribe_secret or self.signup_hook_secret
        if secret is None or secret.get_secret_value() == DEVELOPMENT_SIGNUP_HOOK_SECRET:
            return "unsubscribe:" + _process_key()
        return "unsubscribe:" + secret.get_secret_value()

    @property
    def is_embedded(self) -> bool:
        """True when no Redis is configured: the broker and worker live in this process."""
        return not self.redis_url


def _accepts_none(cls: type[Settings], field_name: str | None) -> bool:
    field = cls.model_fields.get(field_name or "")
    if field is None:
        return False
    annotation = field.annotation
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _link_host(host: str) -> str:
    """The host a link can use for a bind address: a wildcard is reached on loopback."""
    if host in ("", "0.0.0.0"):  # noqa: S104  (reading a bind address, not binding)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@lru_cache(maxsize=1)
def _process_key() -> str:
    """Made on first use, never written anywhere: links it signs die with the process."""
    return secrets.token_hex(32)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's error into one that names each ``STEPMAIL_`` variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"STEPMAIL_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigurationError("; ".join(problems)) from None
    slowest = max(settings.sendgrid_timeout, settings.smtp_timeout)
    if slowest >= settings.send_lease / 2:
        raise ConfigurationError(
            "the transport timeout (STEPMAIL_SENDGRID_TIMEOUT, STEPMAIL_SMTP_TIMEOUT) must stay "
            f"below half of STEPMAIL_SEND_LEASE ({slowest:.0f}s ≥ {settings.send_lease / 2:.0f}s): "
            "a worker renews its batch's lease between sends, not during one"
        )
    if settings.tier_low_threshold > settings.tier_high_threshold:
        raise ConfigurationError(
            "STEPMAIL_TIER_LOW_THRESHOLD must not exceed STEPMAIL_TIER_HIGH_THRESHOLD"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, for entry points only; library code takes settings as a value."""
    return load_settings()
