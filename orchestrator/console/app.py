"""The console as an application of its own, mounted at ``/console`` by the API: its own
error pages (HTML in the reader's language, not the API's JSON), its own security headers,
and no OpenAPI document (pages are not API)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.accounts.passwords import make_hasher
from orchestrator.console.deps import ConsoleState, LoginRequired, Page, here, reader_language
from orchestrator.console.i18n import load_catalogs
from orchestrator.console.pages import (
    audit,
    auth,
    customers,
    home,
    inbox,
    journeys,
    operations,
    users,
)
from orchestrator.console.security import BASE, PAGE_HEADERS
from orchestrator.console.templating import make_environment
from orchestrator.errors import StepmailError
from orchestrator.runtime import Runtime

STATIC = Path(__file__).parent / "static"
STATIC_MAX_AGE = 3600


def create_console_app(runtime: Runtime) -> FastAPI:
    catalogs = load_catalogs()
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = ConsoleState(
        runtime=runtime,
        env=make_environment(catalogs, runtime.settings.default_timezone),
        catalogs=catalogs,
        hasher=make_hasher(),
    )
    app.add_middleware(_Guard)
    for module in (auth, home, customers, inbox, journeys, operations, audit, users):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StepmailError, _error_page)
    app.add_exception_handler(HTTPException, _error_page)
    app.add_exception_handler(RequestValidationError, _error_page)
    return app


class _Guard:
    """Before any route: a NUL in the path or query (PostgreSQL cannot hold one) is a 400.
    After: every answer carries the security headers; assets may be cached a while.

    A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: that one reads the
    request in a task group of its own, so an error raised while the body streams in (the
    body's limit, its time or the bodies' budget, each a 4xx) reached the server wrapped in an
    ``ExceptionGroup``, past every handler, and the answer was a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = Request(scope).url
        if "\x00" in unquote(url.path) or "%00" in url.query:
            refused = PlainTextResponse("NUL in the address", status_code=400, headers=PAGE_HEADERS)
            await refused(scope, receive, send)
            return
        asset = url.path.startswith(BASE + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    headers.setdefault(name, value)
                if asset and message["status"] == 200:
                    headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _to_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"{BASE}/login?next={quote(here(request), safe='')}", status_code=303)


async def _error_page(request: Request, exc: Exception) -> Response:
    status = 500
    detail = ""
    if isinstance(exc, StepmailError):
        status = int(getattr(exc, "http_status", 500))
        detail = str(exc)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, RequestValidationError):
        status = 422
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
    state: ConsoleState = request.app.state.console
    page = Page(request, state, reader_language(request))  # no session: a plain page
    return page.render("error.html", status, status=status, detail=detail)
