"""What the pages behind a mail's links share (unsubscribe, the NPS survey, a session's
registration, a bad click link): one autoescaped environment for ``api/pages/``, the headers
that keep a capability link out of caches, referrers and search engines under a policy that
runs no script, the reader's language, and the pages a bad link gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator.errors import BadClickLink, BadSurveyLink, BadUnsubscribeLink
from orchestrator.recipients.page import language_of

PAGES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "pages")),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
NOT_KEPT = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
"""For every answer to a link, redirects included."""
PAGE_HEADERS = {
    **NOT_KEPT,
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def link_page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = PAGES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def reader_language(request: Request) -> str | None:
    """The browser's first ``Accept-Language`` choice, as ja or en; None without the header."""
    header = request.headers.get("accept-language", "").strip()
    return language_of(header.split(",")[0].strip()) if header else None


def bad_link_page(problem: BadUnsubscribeLink, contact: str) -> HTMLResponse:
    """The page a bad unsubscribe or survey link gets (400: not signed by us; 404: its
    customer is gone)."""
    return link_page(
        "link_error.html",
        problem.http_status,
        lang=problem.lang,
        status=problem.http_status,
        contact=contact,
        survey=isinstance(problem, BadSurveyLink),
    )


def bad_click_page(request: Request, contact: str) -> HTMLResponse:
    """The page a bad click link gets: it says so, and links nowhere."""
    lang = reader_language(request) or "en"
    return link_page(
        "link_error.html",
        BadClickLink.http_status,
        lang=lang,
        status=BadClickLink.http_status,
        contact=contact,
        survey=False,
    )
