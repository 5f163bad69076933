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

from orchestrator.customers.fields import LOCALE_PATTERN
from orchestrator.errors import ConfigurationError

TransportName = Literal["outbox", "smtp", "sendgrid"]
EnvironmentName = Literal["development", "production"]
LogFormatName = Literal["text", "json"]
LogLevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# Public, so only ever accepted in development: `make run` and `make signup` work with no setup.
DEVELOPMENT_SIGNUP_HOOK_SECRET = "dev-signup-secret-change-me"  # noqa: S105  (public on purpose)


MIB = 1024 * 1024
DAY = 86_400  # seconds


class Settings(BaseSettings):
    """Everything an operator can set. Defaults run the embedded mode: SQLite, no Redis, outbox.

    Every number has bounds, so a value that would overflow or spin later (``inf``, ``NaN``,
    ``1e-9``, ``10**15``) stops start-up with one line naming the variable.
    """

    # Each setting's docstring is its description: .env.example is generated from them
    # (python -m orchestrator.tools.env_example), and a test keeps the two equal.
    model_config = SettingsConfigDict(
        env_prefix="STEPMAIL_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
        allow_inf_nan=False,
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
    sendgrid_timeout: float = Field(default=10.0, gt=0, le=60)
    """Seconds a SendGrid call may take (below half of SEND_LEASE)."""
    sendgrid_in_flight: int = Field(default=8, ge=1, le=64)
    """Mails a sending thread posts to SendGrid at the same time, each over its own
    keep-alive connection: a thread moves this many mails a round trip. A worker killed
    mid-send leaves at most this many mails per thread to reconciliation."""

    smtp_host: str = Field(default="localhost", max_length=253, pattern=r"^[^\s/@]+$")
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
    smtp_timeout: float = Field(default=10.0, gt=0, le=60)
    """Seconds an SMTP exchange may take (below half of SEND_LEASE)."""

    signup_hook_secret: SecretStr | None = None  # unset: development uses a public default
    """HMAC key of POST /hooks/signup (16+ characters); unset: the hook refuses every request
    (development: a public key)."""
    signup_hook_tolerance: int = Field(default=300, gt=0, le=DAY)
    """Seconds a signed hook request stays valid."""
    unsubscribe_secret: SecretStr | None = None
    """Signs unsubscribe links (16+ characters); unset: derived from SIGNUP_HOOK_SECRET
    (neither set: a random key per process, so links die with it)."""

    sender_name: str = Field(default="Stepmail Demo", max_length=200)
    """The sender's name in From and every footer (one line); production refuses the demo."""
    sender_email: str = "onboarding@example.com"
    """The From address (plain local@domain); production refuses reserved domains."""
    sender_postal_address: str = Field(
        default="1-2-3 Marunouchi, Chiyoda-ku, Tokyo 100-0005, Japan", max_length=500
    )
    """The postal address every footer carries (特定電子メール法); production refuses the demo."""
    sender_contact: str = Field(default="support@example.com", max_length=500)
    """The contact address every footer carries; production refuses reserved domains."""
    sender_name_ja: str | None = Field(default=None, max_length=500)
    """The sender's name in Japanese mails (From and footer); unset: SENDER_NAME."""
    sender_postal_address_ja: str | None = Field(default=None, max_length=500)
    """The address in Japanese footers, from the postal code and prefecture down
    (〒100-0005 東京都千代田区丸の内1-2-3; another order is refused); unset: the one above."""
    sender_contact_ja: str | None = Field(default=None, max_length=500)
    """The contact in Japanese footers; unset: SENDER_CONTACT."""
    sender_name_en: str | None = Field(default=None, max_length=500)
    """The sender's name in English mails (From and footer); unset: SENDER_NAME."""
    sender_postal_address_en: str | None = Field(default=None, max_length=500)
    """The address in English footers; unset: SENDER_POSTAL_ADDRESS."""
    sender_contact_en: str | None = Field(default=None, max_length=500)
    """The contact in English footers; unset: SENDER_CONTACT."""

    tier_high_threshold: Decimal = Field(default=Decimal(1_000_000), ge=0, lt=10**14)
    """Yearly contract value from which a customer is high touch."""
    tier_low_threshold: Decimal = Field(default=Decimal(100_000), ge=0, lt=10**14)
    """Yearly contract value from which a customer is low touch (below: tech touch)."""
    default_locale: str = Field(default="ja", pattern=LOCALE_PATTERN, max_length=35)
    """Locale of customers who sign up without one."""
    default_timezone: str = "Asia/Tokyo"
    """Time zone of customers who sign up without one (send windows are read in it)."""

    api_key: SecretStr | None = None
    """Bearer token of the /v1 API (events, customers, tasks, suppressions; 16+ characters in
    production); unset: /v1 refuses every request."""

    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * MIB)
    """Largest request body of any route but the two below; larger is 413 as it streams."""
    max_batch_body_bytes: int = Field(default=4 * MIB, ge=1024, le=64 * MIB)
    """Largest body of POST /v1/events and POST /hooks/sendgrid."""
    preauth_body_budget: int = Field(default=32 * MIB, ge=1024, le=4096 * MIB)
    """Bytes of request bodies all requests together may hold before their sender is known
    (the signed hooks, the unsubscribe forms); beyond it a request is 503 before it is read."""

    http_max_connections: int = Field(default=500, ge=1, le=100_000)
    """Open connections one API process holds; one more is answered 503 and closed at once."""
    http_header_timeout: float = Field(default=10.0, ge=0.1, le=300)
    """Seconds a request's headers may take to arrive; then the connection is closed."""
    http_body_timeout: float = Field(default=30.0, ge=0.1, le=3600)
    """Seconds a request's body may take to arrive; then 408."""
    http_keep_alive_timeout: int = Field(default=5, ge=1, le=300)
    """Seconds an idle keep-alive connection is kept open."""
    http_parser: Literal["auto", "httptools", "h11"] = "auto"
    """The HTTP/1.1 parser: httptools (C, less CPU per request) or h11 (pure Python); auto:
    httptools when installed. Both get the same bounds."""

    sendgrid_sandbox: bool = False
    """SendGrid sandbox mode: mails are validated and answered, never delivered."""
    sendgrid_webhook_public_key: str | None = None  # base64, as SendGrid's settings page shows it
    """Verification key of SendGrid's Signed Event Webhook (base64, as SendGrid shows it);
    unset: POST /hooks/sendgrid answers 503."""
    sendgrid_webhook_tolerance: int = Field(default=600, gt=0, le=DAY)
    """Seconds a signed SendGrid event batch stays valid."""
    reconciliation_window: int = Field(default=1800, gt=0, le=30 * DAY)
    """Seconds a SendGrid send with an unknown outcome waits for an event before its one
    resend."""
    send_rate_limit: float = Field(default=0, ge=0, le=100_000)
    """Mails a second for the whole installation, shared through Redis; 0: no limit."""
    soft_bounce_limit: int = Field(default=3, gt=0, le=1000)
    """Soft bounces after which an address is suppressed."""
    unsubscribe_mailto: str | None = None
    """An address added to List-Unsubscribe as mailto: beside the one-click link."""
    send_window: str | None = None  # e.g. "Mon-Fri 09:00-18:00", recipient's local time
    """Recipient-local hours mails may go out, e.g. `Mon-Fri 09:00-18:00`; unset: any time."""
    quiet_days: str = ""  # comma-separated ISO dates on which nothing is sent
    """Comma-separated ISO dates (recipient-local) on which nothing is sent."""
    frequency_cap: str | None = None  # e.g. "1/day,3/week" per customer across journeys
    """Most mails per customer across journeys, e.g. `1/day,3/week`; unset: no cap."""
    consent_text_version: str = Field(default="signup-terms-v1", max_length=100)
    """The consent text version recorded when a signup gives none."""

    csm_team_email: str = "cs-team@example.com"
    """Gets CSM task mails for customers without a CSM; production refuses reserved domains."""
    slack_webhook_url: SecretStr | None = None
    """Slack-compatible incoming-webhook URL for CSM task notifications; unset: none."""
    health_action_cooldown: int = Field(default=7, gt=0, le=3650)
    """Days before the same health band's actions may fire again for a customer."""

    console_secret: SecretStr | None = None
    """Key that signs the operator console's session cookies (16+ characters in production,
    never the unsubscribe key); unset: derived from the hook secret, or one per process."""
    console_idle_timeout: int = Field(default=1800, gt=0, le=30 * DAY)
    """Seconds of inactivity after which a console session ends."""
    console_session_lifetime: int = Field(default=43200, gt=0, le=90 * DAY)
    """Seconds after sign-in at which a console session ends however active."""
    console_login_attempts: int = Field(default=5, gt=0, le=1000)
    """Refused console sign-ins per account per window before the account is throttled."""
    console_login_attempts_per_address: int = Field(default=20, gt=0, le=10_000)
    """Refused console sign-ins per client address per window before it is throttled."""
    console_login_window: int = Field(default=900, gt=0, le=DAY)
    """Seconds over which refused console sign-ins are counted."""

    click_tracking: bool = True
    """Links in mails go through signed redirect links on PUBLIC_BASE_URL that count clicks
    (a journey can say track_clicks: false)."""
    click_scanner_seconds: int = Field(default=30, ge=0, le=3600)
    """A click this many seconds after delivery or sooner is a link scanner's (kept, flagged,
    never counted)."""
    click_scanner_networks: str = ""
    """Comma-separated CIDRs (data-centre ranges) whose clicks are a link scanner's."""
    attribution_window_days: int = Field(default=7, ge=1, le=90)
    """A journey's goal, or an unsubscribe by Stepmail's own link, is credited to the last
    mail sent this many days before it or fewer."""
    archive_retention_days: int = Field(default=90, ge=1, le=3650)
    """Days the message archive keeps what each sent mail was; the scheduler prunes the rest."""
    analytics_timezone: str | None = None
    """The time zone of the days funnels and the overview count in; unset: DEFAULT_TIMEZONE."""

    host: str = Field(default="127.0.0.1", max_length=253, pattern=r"^[^\s/@]*$")
    """Address the API listens on (0.0.0.0: every interface)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port the API listens on."""
    # After host and port: unset, it is derived from them (see _default_public_base_url).
    public_base_url: str = Field(default="", validate_default=True)
    """Public http(s) URL of the API, the base of unsubscribe links (no user, query or
    fragment); unset: http://HOST:PORT (production wants https and a public host)."""
    dispatch_interval: float = Field(default=1.0, ge=0.05, le=3600)
    """Seconds between scheduler ticks."""
    dispatch_batch_size: int = Field(default=500, gt=0, le=100_000)
    """Due rows one scheduler claim takes."""
    dispatch_message_size: int = Field(default=100, gt=0, le=100)
    """Row ids per broker message: one worker batch, sharing database round trips. Larger costs
    less CPU a mail (bench/README, "Session 18"); smaller spreads a small burst over more
    threads."""
    send_lease: int = Field(default=120, gt=0, le=120)
    """Seconds (at most 120) after which a claimed but unsent row is dispatched again."""
    max_send_attempts: int = Field(default=8, gt=0, le=100)
    """Transient failures before a send is marked failed."""
    api_batch_slots: int | None = Field(default=None, gt=0, le=100)
    """Large event bodies (over 16 kB) one API process reads and tracks at once; the others
    wait as bytes. Unset: ten for the host, shared out among the processes of
    ``stepmail api --workers N``. Set it where API processes are started one by one (a unit or
    a container each) on one host: the database bears all their batches, so about ten in all
    (5 each for two)."""
    worker_threads: int = Field(default=8, gt=0, le=256)
    """Threads per worker process (`stepmail run`, `stepmail worker`)."""
    db_pool_size: int = Field(default=20, gt=0, le=1000)
    """PostgreSQL connections per process: at least twice a worker's thread count (a sending
    thread keeps one for its batch's hand-overs and takes another for a short transaction)."""
    queue_name: str = Field(default="stepmail", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    """The Dramatiq queue the scheduler and workers share."""

    # Operations: logs, metrics, outgoing webhooks.
    log_format: LogFormatName = "text"
    """Log format of every process: text (one human line) or json (one object a line)."""
    log_level: LogLevelName = "INFO"
    """Log level of every process: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    metrics_host: str = "127.0.0.1"
    """Address the scheduler's and workers' metrics ports listen on (0.0.0.0 in a container)."""
    scheduler_metrics_port: int = Field(default=9101, ge=0, le=65535)
    """Port of the scheduler's /metrics and /healthz (0: off; one per scheduler on a host)."""
    worker_metrics_port: int = Field(default=9102, ge=0, le=65535)
    """Port of a worker group's /metrics and /healthz (0: off)."""
    metrics_dir: Path | None = None
    """Folder where a worker group's processes share metric files (emptied at start); unset:
    a fresh temporary folder."""
    metrics_token: SecretStr | None = None
    """Bearer token the API's /metrics wants; unset: /metrics is open."""
    webhook_allow_private: bool = False
    """Allow outgoing webhook URLs on loopback or private addresses (development always does)."""
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    """Seconds one outgoing webhook POST may take before it counts as failed."""
    webhook_max_attempts: int = Field(default=10, gt=0, le=50)
    """Outgoing webhook attempts before a message is marked failed (replayable)."""
    webhook_batch_size: int = Field(default=50, gt=0, le=1000)
    """Endpoints whose next outgoing webhook one delivery round posts."""
    webhook_retention_days: int = Field(default=30, ge=0, le=3650)
    """Days a delivered outgoing webhook message and its attempts are kept (0: forever)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("*", mode="before")
    @classmethod
    def _blank_and_whitespace(cls, value: Any, info: ValidationInfo) -> Any:
        """``STEPMAIL_API_KEY=`` is no key at all, never an empty one that anything matches; a
        blank value of a setting that must have one is refused (not read as ``.``, the current
        folder). Text is trimmed, except a secret: it is used exactly as given, so a line
        break read from a secrets file is refused rather than silently dropped (the sender
        signing with the file's bytes would never match)."""
        if not isinstance(value, str):
            return value
        name = info.field_name or ""
        if not value.strip():
            if _accepts_none(cls, name):
                return None
            if name in BLANK_IS_A_VALUE:
                return value
            raise ValueError("is empty: set a value, or remove the variable to use the default")
        if _holds_secret(cls, name):
            if value != value.strip():
                raise ValueError(
                    "has whitespace or a line break at its start or end (read from a file?): "
                    "remove it; a secret is used exactly as written"
                )
            return value
        return value.strip()

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str, info: ValidationInfo) -> str:
        """Unset: where this process serves, so links work with ``STEPMAIL_PORT`` alone. Either
        way an http(s) URL other paths can be added to: it is the base of every unsubscribe
        link in a mail (production also wants https and a public host: startup/)."""
        from orchestrator.guards.links import check_base_url

        if not value.strip():
            host, port = info.data.get("host", "127.0.0.1"), info.data.get("port", 8000)
            value = f"http://{_link_host(host)}:{port}"
        return check_base_url(value.strip())

    @field_validator("sendgrid_api_host")
    @classmethod
    def _api_host(cls, value: str) -> str:
        from orchestrator.guards.links import check_base_url

        return check_base_url(value)

    @field_validator("slack_webhook_url")
    @classmethod
    def _slack_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A web link; the message never shows it (its path is the credential)."""
        from orchestrator.guards.links import web_link_problem

        if value is not None and (problem := web_link_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @field_validator("sender_postal_address", "sender_contact", "consent_text_version")
    @classmethod
    def _one_line(cls, value: str) -> str:
        from orchestrator.guards.mail_headers import refuse_unsafe_characters

        return refuse_unsafe_characters(value)  # shown in every mail's footer and the pages

    @field_validator("default_timezone", "analytics_timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        from orchestrator.customers.timezones import validate_timezone

        return None if value is None else validate_timezone(value)

    @field_validator("click_scanner_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from orchestrator.guards.networks import parse_networks

        parse_networks(value)  # ValueError names the bad one
        return value

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

    @field_validator("sender_name_ja", "sender_name_en")
    @classmethod
    def _local_name_header_safe(cls, value: str | None) -> str | None:
        from orchestrator.guards.mail_headers import refuse_unsafe_characters

        return None if value is None else refuse_unsafe_characters(value)

    @field_validator("sender_postal_address_ja")
    @classmethod
    def _japanese_address_order(cls, value: str | None) -> str | None:
        from orchestrator.customers.postal import check_japanese_address

        return None if value is None else check_japanese_address(value)

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
    def reporting_timezone(self) -> str:
        """The time zone whose days funnels and the overview count in."""
        return self.analytics_timezone or self.default_timezone

    @property
    def is_embedded(self) -> bool:
        """True when no Redis is configured: the broker and worker live in this process."""
        return not self.redis_url


BLANK_IS_A_VALUE = frozenset(
    {"public_base_url", "quiet_days", "click_scanner_networks"}
)  # blank: derived / none


def _holds_secret(cls: type[Settings], field_name: str) -> bool:
    field = cls.model_fields.get(field_name)
    return field is not None and SecretStr in (field.annotation, *get_args(field.annotation))


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
            f"STEPMAIL_{'_'.join(str(p) for p in err['loc']).upper()}: "
            + err["msg"].removeprefix("Value error, ")
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
    sockets = worker_sockets(settings)
    if sockets > WORKER_SOCKET_LIMIT:
        raise ConfigurationError(
            f"STEPMAIL_WORKER_THREADS × STEPMAIL_SENDGRID_IN_FLIGHT ({settings.worker_threads} × "
            f"{settings.sendgrid_in_flight}) would keep about {sockets} connections open in a "
            f"worker process, more than {WORKER_SOCKET_LIMIT}: lower one of them, or run more "
            "worker processes"
        )
    if settings.tier_low_threshold > settings.tier_high_threshold:
        raise ConfigurationError(
            "STEPMAIL_TIER_LOW_THRESHOLD must not exceed STEPMAIL_TIER_HIGH_THRESHOLD"
        )
    if settings.preauth_body_budget < settings.max_batch_body_bytes:
        raise ConfigurationError(
            "STEPMAIL_PREAUTH_BODY_BUDGET must be at least STEPMAIL_MAX_BATCH_BODY_BYTES "
            f"({settings.preauth_body_budget} < {settings.max_batch_body_bytes}): "
            "a SendGrid batch of the largest size could never be read"
        )
    return settings


# A process may open 1,024 descriptors on most systems (the soft RLIMIT_NOFILE): a worker's
# database pool, its SendGrid connections and its own files must stay under that, with room
# for the files and Redis connections a process has. (The windows' wait itself, poll(), has
# no limit on descriptor numbers.)
WORKER_SOCKET_LIMIT = 900
_SINGLE_POSTS = 20  # transports.sendgrid.MAX_CONNECTIONS, the shared pool of single posts


def worker_sockets(settings: Settings) -> int:
    """About how many connections a worker process keeps: its database pool, and with
    SendGrid each thread's window plus the shared pool of single posts."""
    if settings.mail_transport != "sendgrid":
        return settings.db_pool_size
    windows = settings.worker_threads * settings.sendgrid_in_flight
    return settings.db_pool_size + windows + _SINGLE_POSTS


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, for entry points only; library code takes settings as a value."""
    return load_settings()
