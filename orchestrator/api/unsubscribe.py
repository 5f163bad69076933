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

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.link_pages import link_page, reader_language
from orchestrator.api.openapi import Responses, html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.recipients.page import NOTICES, PageState
from orchestrator.runtime import Runtime
from orchestrator.services import recipients

router = APIRouter(route_class=StrictRoute)
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
        reader_language=reader_language(request),
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
        reader_language=reader_language(request),
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
        reader_language=reader_language(request),
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
        reader_language=reader_language(request),
    )
    return RedirectResponse(f"/unsubscribe/{token}?done=resubscribed", status_code=303)


def _page(runtime: Runtime, state: PageState) -> HTMLResponse:
    settings = runtime.settings
    return link_page(
        "unsubscribe.html", page=state, sender=settings.sender_name, contact=settings.sender_contact
    )
