"""One-click unsubscribe (RFC 8058) and the preferences page behind every mail's link.

``POST /unsubscribe/{token}`` suppresses the address at once, with no cookie, login or form
field required (mailbox providers post ``List-Unsubscribe=One-Click``; the page's own button
posts the same). ``GET`` shows a page in the customer's language: choose topics (one per
journey), unsubscribe from everything, or resubscribe after an unsubscribe of one's own.

The signed token in the path is the capability: whoever holds the link may act on it, and no
cookie or session exists that another site could ride on, so the forms need no CSRF token. The
pages are autoescaped, work without JavaScript, and are served ``no-store``/``no-referrer`` so
the link does not leak into caches or to other sites.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import Responses, html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import BadSurveyLink, BadUnsubscribeLink
from orchestrator.recipients.page import NOTICES, PageState, language_of
from orchestrator.runtime import Runtime
from orchestrator.services import recipients

router = APIRouter(route_class=StrictRoute)
_PAGES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "pages")),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
_BAD_LINK = html_answers(
    s400="The link was not signed by us (a page says so)",
    s404="The link's customer no longer exists (a page says so)",
)
_FORM = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"topic": {"type": "array", "items": {"type": "string"}}},
                }
            }
        }
    }
}
_BACK_TO_THE_PAGE: Responses = {303: {"description": "Done: back to the page, with a notice"}}


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(422)},
)
async def preferences_page(
    token: str, request: Request, runtime: RuntimeDep, done: str | None = None
) -> Response:
    notice = next((known for known in NOTICES if known == done), None)
    state = await run_in_threadpool(
        recipients.show_page,
        runtime.engine,
        token,
        rules=runtime.page_rules(),
        reader_language=_reader_language(request),
        notice=notice,
    )
    return _page(runtime, state)


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(413, 422)},
)
async def unsubscribe_now(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """One click: works for the mailbox provider's POST (any body) and the page's button."""
    state = await run_in_threadpool(
        recipients.unsubscribe,
        runtime.engine,
        token,
        rules=runtime.page_rules(),
        clock=runtime.clock,
        reader_language=_reader_language(request),
    )
    return _page(runtime, state)


@router.post(
    "/unsubscribe/{token}/topics",
    response_class=HTMLResponse,
    responses={**_BACK_TO_THE_PAGE, **_BAD_LINK, **json_answers_beside_pages(413, 422)},
    openapi_extra=_FORM,
)
async def choose_topics(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """The checked topics stay subscribed; every other topic on the page is turned off."""
    body = await request.body()  # a few journey ids; capped by api/body_limit.py
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    await run_in_threadpool(
        recipients.save_topics,
        runtime.engine,
        token,
        frozenset(form.get("topic", [])),
        rules=runtime.page_rules(),
        clock=runtime.clock,
        reader_language=_reader_language(request),
    )
    return RedirectResponse(f"/unsubscribe/{token}?done=saved", status_code=303)


@router.post(
    "/unsubscribe/{token}/resubscribe",
    response_class=HTMLResponse,
    responses={**_BACK_TO_THE_PAGE, **_BAD_LINK, **json_answers_beside_pages(413, 422)},
)
async def resubscribe(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """Undo the recipient's own unsubscribe; a bounce or spam-report suppression stays."""
    await run_in_threadpool(
        recipients.resubscribe,
        runtime.engine,
        token,
        rules=runtime.page_rules(),
        reader_language=_reader_language(request),
    )
    return RedirectResponse(f"/unsubscribe/{token}?done=resubscribed", status_code=303)


def _page(runtime: Runtime, state: PageState) -> HTMLResponse:
    settings = runtime.settings
    html = _PAGES.get_template("unsubscribe.html").render(
        page=state, sender=settings.sender_name, contact=settings.sender_contact
    )
    return HTMLResponse(html, headers=_HEADERS)


def bad_link_page(problem: BadUnsubscribeLink, contact: str) -> HTMLResponse:
    """The page a bad unsubscribe or survey link gets (400: not signed by us; 404: its
    customer is gone)."""
    html = _PAGES.get_template("unsubscribe_error.html").render(
        lang=problem.lang,
        status=problem.http_status,
        contact=contact,
        survey=isinstance(problem, BadSurveyLink),
    )
    return HTMLResponse(html, status_code=problem.http_status, headers=_HEADERS)


def _reader_language(request: Request) -> str | None:
    """The browser's first ``Accept-Language`` choice, as ja or en; None without the header."""
    header = request.headers.get("accept-language", "").strip()
    return language_of(header.split(",")[0].strip()) if header else None
