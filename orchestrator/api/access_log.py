"""Capability tokens stay out of the access log.

An unsubscribe link's token is the capability to act for its recipient (see
``api/unsubscribe.py``): whoever reads it may unsubscribe them or change their topics.
uvicorn's access log prints each request's path, so ``/unsubscribe/TOKEN`` would hand every
token to whoever reads the logs. A click link's token (``/r/TOKEN``) carries the link's
destination, which may hold a customer's own booking link: it stays out too.
:class:`RedactCapabilities` rewrites such paths in every record of the ``uvicorn.access``
logger before any handler formats it; :func:`uvicorn_log_config` is uvicorn's own logging
configuration with the filter installed, for ``serve.py``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "[redacted]"
_CAPABILITY_PATH = re.compile(r"(/unsubscribe/|/nps/|/programs/|/r/)[^/?#\s\"]+")


def redact(text: str) -> str:
    """``text`` with the token of every unsubscribe, survey, program or click path replaced
    by ``[redacted]``."""
    return _CAPABILITY_PATH.sub(rf"\g<1>{REDACTED}", text)


class RedactCapabilities(logging.Filter):
    """Rewrites the path (an argument of uvicorn's access record, or the message itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, its access logger filtered."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_capabilities"] = {"()": RedactCapabilities}
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = config["loggers"].setdefault(name, {})
        logger["filters"] = [*logger.get("filters", []), "redact_capabilities"]
    return config
