"""The registration link of a webinar or group session (see
:mod:`orchestrator.services.programs`): ``GET /programs/{token}`` shows the session and records
nothing; ``POST`` registers and leads on (303) to the session's registration page. Served like
the unsubscribe page: no JavaScript, strict CSP, ``no-store``, ``no-referrer``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import Responses, html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.api.unsubscribe import _HEADERS, _PAGES, _reader_language
from orchestrator.journeys.programs import programs_definition
from orchestrator.runtime import Runtime
from orchestrator.services import programs

router = APIRouter(route_class=StrictRoute)
_BAD_LINK = html_answers(
    s400="The link was not signed by us (a page says so)",
    s404="The customer or the session no longer exists (a page says so)",
)
_ON: Responses = {303: {"description": "Registered: on to the session's registration page"}}


def _rules(runtime: Runtime) -> programs.ProgramRules:
    settings = runtime.settings
    return programs.ProgramRules(
        settings.signing_secret(),
        settings.default_locale,
        programs_definition(settings.journeys_dir),
        runtime.usage_rules(),
    )


@router.get(
    "/programs/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(422)},
)
async def program_page(token: str, request: Request, runtime: RuntimeDep) -> Response:
    page = await run_in_threadpool(
        programs.show_program,
        runtime.engine,
        token,
        rules=_rules(runtime),
        clock=runtime.clock,
        reader_language=_reader_language(request),
    )
    return _page(runtime, page)


@router.post(
    "/programs/{token}",
    response_class=HTMLResponse,
    responses={**_ON, **_BAD_LINK, **json_answers_beside_pages(413, 422)},
)
async def program_register(token: str, request: Request, runtime: RuntimeDep) -> Response:
    page = await run_in_threadpool(
        programs.register_program,
        runtime.engine,
        token,
        rules=_rules(runtime),
        clock=runtime.clock,
        reader_language=_reader_language(request),
    )
    if page.status in ("registered", "already"):
        return RedirectResponse(page.registration_url, status_code=303, headers=_HEADERS)
    return _page(runtime, page)


def _page(runtime: Runtime, page: programs.ProgramPage) -> HTMLResponse:
    html = _PAGES.get_template("program.html").render(
        page=page, sender=runtime.settings.sender_name, contact=runtime.settings.sender_contact
    )
    return HTMLResponse(html, headers=_HEADERS)
