"""What a serving process's log may hold: no secret, and no flood.

- Libraries that log every request with its URL are kept at WARNING: httpx writes
  ``HTTP Request: POST https://hooks.slack.com/services/T…/B…/SECRET`` at INFO, and the path
  of a Slack incoming webhook is its credential; urllib3 and httpcore log hosts and requests
  at DEBUG.
- :class:`RedactSecrets` rewrites any record that still holds a configured secret (the API
  key, the hook and unsubscribe secrets, the SendGrid key, the SMTP, database and Redis
  passwords, the Slack URL) or a URL's ``user:password@`` part, traceback included.
- :class:`RateLimit` lets the same warning through once per window and counts the rest: an
  attacker who makes the server refuse connections, or a resource that runs out, must not
  write a traceback per attempt (asyncio logs every failed ``accept()``).

Every serving process (``stepmail`` serving commands, uvicorn's records, the ``dramatiq
workers`` package) sets its logging up in one call, :func:`configure_process_logging`: the one
handler of :mod:`orchestrator.observability.logging` (format, request id, capability tokens
out) with this module's filters on it; library code only logs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO
from urllib.parse import unquote, urlsplit

from orchestrator.observability.logging import configure_logging
from orchestrator.settings import Settings

REDACTED = "[secret]"
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack", "alembic.runtime.plugins")
FLOODING_LOGGERS = ("asyncio", "uvicorn.error", "orchestrator.processes.http_server")
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words; settings refuse them anyway
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold, longest first (so a URL goes before its path)."""
    values: list[str] = []
    for name in Settings.model_fields:
        secret = getattr(settings, name)
        if hasattr(secret, "get_secret_value"):
            values.append(secret.get_secret_value())
    slack = settings.slack_webhook_url
    if slack is not None:
        values.append(urlsplit(slack.get_secret_value()).path)
    for url in (settings.database_url, settings.redis_url or ""):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            values += [password, unquote(password)]
    unique = {value for value in values if len(value.strip("/")) >= MIN_SECRET_LENGTH}
    return sorted(unique, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Replaces each secret, and a URL's user-info, in the message and the traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _USERINFO.sub(rf"\g<1>{REDACTED}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it as it would anyway
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class RateLimit(logging.Filter):
    """At most one record per (logger, message) per ``window`` seconds from the loggers an
    outsider can make talk; the next one let through says how many were held back."""

    def __init__(
        self,
        window: float = 10.0,
        loggers: Iterable[str] = FLOODING_LOGGERS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window, self.loggers, self._now = window, tuple(loggers), monotonic
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not _under(record.name, self.loggers):
            return True
        key = (record.name, str(record.msg))
        now = self._now()
        with self._lock:
            last, held = self._seen.get(key, (-self.window, 0))
            if now - last < self.window:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # many distinct messages: forget the oldest
                oldest = min(self._seen, key=lambda k: self._seen[k][0])
                del self._seen[oldest]
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:.0f} s)"
        return True


def _under(name: str, loggers: tuple[str, ...]) -> bool:
    return any(name == logger or name.startswith(logger + ".") for logger in loggers)


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def install_log_hygiene(settings: Settings) -> None:
    """Quiet the chatty libraries, rate-limit the loggers an outsider can make talk (a filter
    on the logger itself, so it holds whichever handler prints) and redact secrets on every
    handler of the root logger (call it after the handlers exist: Dramatiq's CLI makes its
    own)."""
    quiet_libraries()
    for name in FLOODING_LOGGERS:
        logger = logging.getLogger(name)
        for old_limit in [f for f in logger.filters if isinstance(f, RateLimit)]:
            logger.removeFilter(old_limit)
        logger.addFilter(RateLimit())
    redaction = RedactSecrets(secrets_of(settings))
    for handler in logging.getLogger().handlers:
        for old_redaction in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old_redaction)
        handler.addFilter(redaction)


def configure_process_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """The one logging set-up of a process: the one handler in ``STEPMAIL_LOG_FORMAT`` at
    ``STEPMAIL_LOG_LEVEL`` (uvicorn's and Dramatiq's records included), secrets redacted on it
    and floods held back. Calling it again replaces the handler: never two."""
    configure_logging(settings.log_level, settings.log_format, stream)
    install_log_hygiene(settings)
