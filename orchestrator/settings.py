"""Runtime configuration, read once by entry points from ``STEPMAIL_*`` variables and ``.env``."""

from __future__ import annotations

import os
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

# Public, so only ever accepted in development: `make run` and `make signup` work with no setup.
DEVELOPMENT_SIGNUP_HOOK_SECRET = "dev-signup-secret-change-me"  # noqa: S105  (public on purpose)


class Settings(BaseSettings):
    """Everything an operator can set. Defaults run the embedded mode: SQLite, no Redis, outbox."""

    # Each setting's docstring is its description: .env.example is generated from them
    # (python -m orchestrator.tools.env_example), and a test keeps the two equal.
    model_config = SettingsConfigDict(
        env_prefix="STEPMAIL_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    environment: EnvironmentName = "production"
    """`production` refuses to serve while a development default is in use (the public
    signup secret, demo sender identity, loopback links); `development` accepts them."""

    database_url: str = "sqlite:///./var/stepmail.db"
    """SQLite or PostgreSQL (`postgresql://user:password@host:5432/db`)."""
    redis_url: str | None = None
    """Redis for the broker (`redis://host:6379/0`); unset: an in-process broker and worker
    (`stepmail run` only)."""
    mail_transport: TransportName = "outbox"
    """`outbox` (.eml files), `smtp` or `sendgrid`."""
    outbox_dir: Path = Path("./var/outbox")
    """Where the outbox transport writes .eml files."""
    journeys_dir: Path = Path("./journeys")
    """The journeys (YAML) to load."""
    templates_dir: Path = Path("./templates/mail")
    """The mail templates (Jinja)."""

    sendgrid_api_key: SecretStr | None = None
    """SendGrid API key (mail send permission); needed with MAIL_TRANSPORT=sendgrid."""
    sendgrid_api_host: str = "https://api.sendgrid.com"
    """SendGrid's API base URL (e.g. its EU host `https://api.eu.sendgrid.com`)."""
    sendgrid_timeout: float = Field(default=10.0, gt=0)
    """Seconds a SendGrid call may take (below half of SEND_LEASE)."""

    smtp_host: str = "localhost"
    """SMTP server host."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    """SMTP server port."""
    smtp_username: str | None = None
    """SMTP login; unset: no authentication."""
    smtp_password: SecretStr | None = None
    """SMTP password (needed with SMTP_USERNAME)."""
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS."""
    smtp_ssl: bool = False
    """Connect to SMTP over TLS from the start (port 465)."""
    smtp_timeout: float = Field(default=10.0, gt=0)
    """Seconds an SMTP exchange may take (below half of SEND_LEASE)."""

    signup_hook_secret: SecretStr | None = None  # unset: development uses a public default
    """HMAC key of POST /hooks/signup (16+ characters); unset: the hook refuses every request
    (development: a public key)."""
    signup_hook_tolerance: int = Field(default=300, gt=0)
    """Seconds a signed hook request stays valid."""
    unsubscribe_secret: SecretStr | None = None
    """Signs unsubscribe links (16+ characters); unset: derived from SIGNUP_HOOK_SECRET
    (neither set: a random key per process, so links die with it)."""

    sender_name: str = "Stepmail Demo"
    """The sender's name in From and every footer (one line); production refuses the demo."""
    sender_email: str = "onboarding@example.com"
    """The From address (plain local@domain); production refuses reserved domains."""
    sender_postal_address: str = "1-2-3 Marunouchi, Chiyoda-ku, Tokyo 100-0005, Japan"
    """The postal address every footer carries (特定電子メール法); production refuses the demo."""
    sender_contact: str = "support@example.com"
    """The contact address every footer carries; production refuses reserved domains."""

    tier_high_threshold: Decimal = Field(default=Decimal(1_000_000), ge=0)
    """Yearly contract value from which a customer is high touch."""
    tier_low_threshold: Decimal = Field(default=Decimal(100_000), ge=0)
    """Yearly contract value from which a customer is low touch (below: tech touch)."""
    default_locale: str = "ja"
    """Locale of customers who sign up without one."""
    default_timezone: str = "Asia/Tokyo"
    """Time zone of customers who sign up without one (send windows are read in it)."""

    api_key: SecretStr | None = None
    """Bearer token of the /v1 API (events, customers, tasks, suppressions; 16+ characters in
    production); unset: /v1 refuses every request."""

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest request body of any route but the two below; larger is 413 as it streams."""
    max_batch_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest body of POST /v1/events and POST /hooks/sendgrid."""

    sendgrid_sandbox: bool = False
    """SendGrid sandbox mode: mails are validated and answered, never delivered."""
    sendgrid_webhook_public_key: str | None = None  # base64, as SendGrid's settings page shows it
    """Verification key of SendGrid's Signed Event Webhook (base64, as SendGrid shows it);
    unset: POST /hooks/sendgrid answers 503."""
    sendgrid_webhook_tolerance: int = Field(default=600, gt=0)
    """Seconds a signed SendGrid event batch stays valid."""
    reconciliation_window: int = Field(default=1800, gt=0)
    """Seconds a SendGrid send with an unknown outcome waits for an event before its one
    resend."""
    send_rate_limit: float = Field(default=0, ge=0)
    """Mails a second for the whole installation, shared through Redis; 0: no limit."""
    soft_bounce_limit: int = Field(default=3, gt=0)
    """Soft bounces after which an address is suppressed."""
    unsubscribe_mailto: str | None = None
    """An address added to List-Unsubscribe as mailto: beside the one-click link."""
    send_window: str | None = None  # e.g. "Mon-Fri 09:00-18:00", recipient's local time
    """Recipient-local hours mails may go out, e.g. `Mon-Fri 09:00-18:00`; unset: any time."""
    quiet_days: str = ""  # comma-separated ISO dates on which nothing is sent
    """Comma-separated ISO dates (recipient-local) on which nothing is sent."""
    frequency_cap: str | None = None  # e.g. "1/day,3/week" per customer across journeys
    """Most mails per customer across journeys, e.g. `1/day,3/week`; unset: no cap."""
    consent_text_version: str = "signup-terms-v1"
    """The consent text version recorded when a signup gives none."""

    csm_team_email: str = "cs-team@example.com"
    """Gets CSM task mails for customers without a CSM; production refuses reserved domains."""
    slack_webhook_url: SecretStr | None = None
    """Slack-compatible incoming-webhook URL for CSM task notifications; unset: none."""
    health_action_cooldown: int = Field(default=7, gt=0)
    """Days before the same health band's actions may fire again for a customer."""

    console_secret: SecretStr | None = None
    """Key that signs the operator console's session cookies (16+ characters in production,
    never the unsubscribe key); unset: derived from the hook secret, or one per process."""
    console_idle_timeout: int = Field(default=1800, gt=0)
    """Seconds of inactivity after which a console session ends."""
    console_session_lifetime: int = Field(default=43200, gt=0)
    """Seconds after sign-in at which a console session ends however active."""
    console_login_attempts: int = Field(default=5, gt=0)
    """Refused console sign-ins per account per window before the account is throttled."""
    console_login_attempts_per_address: int = Field(default=20, gt=0)
    """Refused console sign-ins per client address per window before it is throttled."""
    console_login_window: int = Field(default=900, gt=0)
    """Seconds over which refused console sign-ins are counted."""

    host: str = "127.0.0.1"
    """Address the API listens on (0.0.0.0: every interface)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port the API listens on."""
    # After host and port: unset, it is derived from them (see _default_public_base_url).
    public_base_url: str = Field(default="", validate_default=True)
    """Public http(s) URL of the API, the base of unsubscribe links; unset: http://HOST:PORT
    (production refuses loopback and reserved domains)."""
    dispatch_interval: float = Field(default=1.0, gt=0)
    """Seconds between scheduler ticks."""
    dispatch_batch_size: int = Field(default=500, gt=0)
    """Due rows one scheduler claim takes."""
    dispatch_message_size: int = Field(default=25, gt=0, le=100)
    """Row ids per broker message: one worker batch, sharing database round trips."""
    send_lease: int = Field(default=120, gt=0, le=120)
    """Seconds (at most 120) after which a claimed but unsent row is dispatched again."""
    max_send_attempts: int = Field(default=8, gt=0)
    """Transient failures before a send is marked failed."""
    worker_threads: int = Field(default=8, gt=0)
    """Threads per worker process (`stepmail run`, `stepmail worker`)."""
    db_pool_size: int = Field(default=20, gt=0)
    """PostgreSQL connections per process: at least twice a worker's thread count (a sending
    thread keeps one for its batch's hand-overs and takes another for a short transaction)."""
    queue_name: str = "stepmail"
    """The Dramatiq queue the scheduler and workers share."""

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

    def console_key(self) -> str:
        """The key that signs console cookies: its own setting, else derived from a configured
        hook secret, else a random key for this process (sessions then end with it). Never a
        public default: whoever has the key could forge the login form's token."""
        secret = self.console_secret or self.signup_hook_secret
        if secret is None or secret.get_secret_value() == DEVELOPMENT_SIGNUP_HOOK_SECRET:
            return "console:" + _process_key()
        return "console:" + secret.get_secret_value()

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


# Set by ``stepmail api --workers N`` for its own worker processes only (not a setting, so
# not ``STEPMAIL_``-prefixed): they share the key their parent made.
PROCESS_KEY_VARIABLE = "_STEPMAIL_SHARED_PROCESS_KEY"


@lru_cache(maxsize=1)
def _process_key() -> str:
    """Made on first use, never written anywhere: links it signs die with the process (or with
    the ``stepmail api --workers N`` parent that handed it to its workers)."""
    return os.environ.get(PROCESS_KEY_VARIABLE) or secrets.token_hex(32)


def share_process_key() -> None:
    """Hand this process's key to the worker processes it is about to start (their
    environment is a copy of this one)."""
    os.environ[PROCESS_KEY_VARIABLE] = _process_key()


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
