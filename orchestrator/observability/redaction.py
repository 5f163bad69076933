"""Capability tokens stay out of every log line.

A path such as ``/unsubscribe/TOKEN`` carries a capability: whoever reads the token may act for
its recipient (unsubscribe them, change their topics). Every path prefix listed in
:data:`CAPABILITY_PREFIXES` has its next segment replaced by ``[redacted]``, and every query
parameter named in :data:`SECRET_PARAMETERS` has its value replaced, wherever such a path
appears in a record (the message or its arguments). A route that takes a token in its path
must add its prefix here; ``tests/api/test_access_log.py`` checks every route of the app.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# The path prefixes whose next segment is a capability (mail links: unsubscribe today; click
# links under /r/, NPS links under /nps/, program links under /programs/).
CAPABILITY_PREFIXES = ("/unsubscribe/", "/r/", "/nps/", "/programs/")
SECRET_PARAMETERS = ("token", "signature", "sig", "key", "api_key", "secret")

_CAPABILITY_PATH = re.compile(
    "(" + "|".join(re.escape(prefix) for prefix in CAPABILITY_PREFIXES) + r")[^/?#\s\"']+"
)
_SECRET_QUERY = re.compile(
    r"([?&](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&#\s\"']*", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with every capability path segment and secret query value replaced."""
    if "/" not in text and "=" not in text:
        return text  # the common log line: nothing to look for
    return _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", _CAPABILITY_PATH.sub(rf"\g<1>{REDACTED}", text))


class RedactCapabilities(logging.Filter):
    """Formats a record's message once, redacted, before any handler sees it: an argument of
    any type (httpx passes a URL object) is covered, since the text is what gets written."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return True
        record.msg, record.args = redact(message), None
        return True
