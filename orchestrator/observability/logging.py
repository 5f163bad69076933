"""One logging set-up for every Stepmail process: ours, uvicorn's and Dramatiq's records go
through the same handler, in the same format.

``STEPMAIL_LOG_FORMAT`` picks ``text`` (one human line) or ``json`` (one object a line, for a
log pipeline); ``STEPMAIL_LOG_LEVEL`` the level. Every record passes two filters on the
handler, so records of every logger get them: :class:`RequestIdFilter` adds the API request's
id (``request_id``; see :mod:`orchestrator.api.request_context`) and
:class:`~orchestrator.observability.redaction.RedactCapabilities` takes capability tokens out.
Entry points call :func:`configure_logging` once; library code only ever calls
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from orchestrator.observability.redaction import RedactCapabilities

LogFormat = Literal["text", "json"]

request_id: ContextVar[str | None] = ContextVar("stepmail_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
# Loggers that bring their own handlers or levels; they are made to propagate to ours.
_FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq", "alembic")
_QUIETER = {
    "alembic.runtime.plugins": logging.WARNING,
    "alembic.runtime.migration": logging.WARNING,
    # httpx logs every request's full URL at INFO: a Slack incoming-webhook URL, or an
    # integrator's webhook URL, is a secret in its path. Our own lines name what was called.
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
# What every LogRecord has; anything else on a record is a field passed with ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "request_tag",
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on the record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        record.request_id = current
        record.request_tag = f" [{current}]" if current else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id when
    there is one, every ``extra=`` field, and the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", None)
        if current:
            entry["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_handler(log_format: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    """The one handler: the format asked for, the request id and the redaction on every record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactCapabilities())
    return handler


def configure_logging(
    level: str | int = logging.INFO, log_format: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Replace the root logger's handlers with the one handler; make uvicorn's and Dramatiq's
    loggers hand their records to it instead of printing in their own formats."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(log_format, stream))
    root.setLevel(level)
    for name in _FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        for old in list(foreign.handlers):
            foreign.removeHandler(old)
        foreign.propagate = True
        foreign.setLevel(logging.NOTSET)
    for name, quieter in _QUIETER.items():
        logging.getLogger(name).setLevel(quieter)
