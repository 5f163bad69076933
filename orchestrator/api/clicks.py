"""``GET /r/{token}``: a link in a mail, followed. A token we signed answers ``302`` to where
the template's link went, and the click is recorded after the answer (scanners' clicks are
flagged, :mod:`orchestrator.tracking.scanners`); any other token gets a small page (``400``)
and is never redirected anywhere. HEAD is answered the same (scanners send it).

Following a link acts for nobody, so a GET is right here: it only redirects and counts. The
answer is ``no-store`` (a cache must not answer the next click) and ``no-referrer`` (the
destination does not learn the token).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import BadClickLink
from orchestrator.recipients.page import language_of
from orchestrator.services.clicks import read_click_link, record_click

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
}
_PAGE_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


@router.api_route(
    "/r/{token}",
    methods=["GET"],
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "To the link as the mail's template wrote it"},
        **html_answers(s400="The link was not signed by us (a page says so)"),
        **json_answers_beside_pages(422),
    },
    summary="Follow a link in a mail",
)
async def follow(
    token: str, request: Request, runtime: RuntimeDep, background: BackgroundTasks
) -> Response:
    link = read_click_link(token, rules=runtime.click_rules())
    background.add_task(
        record_click,
        runtime.engine,
        link,
        method=request.method,
        user_agent=request.headers.get("user-agent", ""),
        client_ip=request.client.host if request.client else None,
        rules=runtime.click_rules(),
        clock=runtime.clock,
    )
    return RedirectResponse(link.url, status_code=302, headers=_HEADERS)


# Scanners check links with HEAD: answered like GET (and recorded, flagged), out of the schema.
router.add_api_route("/r/{token}", follow, methods=["HEAD"], include_in_schema=False)


def bad_click_page(request: Request, contact: str) -> HTMLResponse:
    """The page a bad click link gets: it says so, and links nowhere."""
    header = request.headers.get("accept-language", "").strip()
    lang = language_of(header.split(",")[0].strip()) if header else "en"
    html = _PAGES.get_template("link_error.html").render(lang=lang, contact=contact)
    return HTMLResponse(html, status_code=BadClickLink.http_status, headers=_PAGE_HEADERS)
