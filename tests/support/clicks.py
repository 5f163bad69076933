"""Mails track clicks: their links go through signed ``/r/`` redirect links. Tests that look
for a destination in a mail read it back from the link."""

from __future__ import annotations

import html
import re

from orchestrator.settings import Settings
from orchestrator.tracking.links import click_key, read_click

_TRACKED = re.compile(r"https?://[^\s\"'<>]+/r/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


def untracked(text: str, settings: Settings) -> str:
    """``text`` with every click link of ours replaced by where it leads (HTML-escaped, as
    the template wrote it)."""
    key = click_key(settings.signing_secret())
    return _TRACKED.sub(lambda m: html.escape(read_click(key, m.group(1)).url), text)
