"""The NPS page behind the day-30 mail's 0-10 scale (see :mod:`orchestrator.services.surveys`).

``GET /nps/{token}?score=N`` shows the choice and never records it (mail scanners follow
every link); ``POST /nps/{token}`` (form: ``score``, optional ``comment``) records it. Like the
unsubscribe page: the signed token is the capability (no cookie, so no CSRF token), the page is
autoescaped, works without JavaScript and is served with a strict CSP, ``no-store`` and
``no-referrer``.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.api.unsubscribe import _HEADERS, _PAGES, _reader_language
from orchestrator.runtime import Runtime
from orchestrator.services import surveys

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
                    "properties": {
                        "score": {"type": "integer", "minimum": 0, "maximum": 10},
                        "comment": {"type": "string", "maxLength": 2000},
                    },
                    "required": ["score"],
                }
            }
        }
    }
}


def _rules(runtime: Runtime) -> surveys.SurveyRules:
    settings = runtime.settings
    return surveys.SurveyRules(
        settings.signing_secret(), settings.default_locale, runtime.usage_rules()
    )


@router.get(
    "/nps/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(422)},
)
async def nps_page(
    token: str, request: Request, runtime: RuntimeDep, score: str | None = None
) -> Response:
    """Shows the score chosen in the mail, a comment box and the button that records it."""
    page = await run_in_threadpool(
        surveys.show_nps,
        runtime.engine,
        token,
        score,
        rules=_rules(runtime),
        reader_language=_reader_language(request),
    )
    return _page(runtime, page)


@router.post(
    "/nps/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(413, 422)},
    openapi_extra=_FORM,
)
async def nps_answer(
    token: str, request: Request, runtime: RuntimeDep, background: BackgroundTasks
) -> Response:
    """Records the answer (the latest wins) and thanks the customer."""
    body = await request.body()  # capped by api/body_limit.py
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise surveys.refused("body", "score", "a form of score and comment") from None
    page = await run_in_threadpool(
        surveys.answer_nps,
        runtime.engine,
        token,
        _one(form, "score"),
        _one(form, "comment"),
        rules=_rules(runtime),
        clock=runtime.clock,
        notify=lambda task_ids: background.add_task(runtime.notify_now, task_ids),
        reader_language=_reader_language(request),
    )
    return _page(runtime, page)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise surveys.refused("body", name, "given more than once")
    return values[0] if values else None


def _page(runtime: Runtime, page: surveys.SurveyPage) -> HTMLResponse:
    settings = runtime.settings
    html = _PAGES.get_template("nps.html").render(
        page=page, sender=settings.sender_name, contact=settings.sender_contact
    )
    return HTMLResponse(html, headers=_HEADERS)
