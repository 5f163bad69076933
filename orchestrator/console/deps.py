"""What every console route starts from: the console's shared state, the reader's language,
the signed-in user (or a redirect to the sign-in page), their permissions, and the checks a
posted form passes (same origin, the session's CSRF token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from argon2 import PasswordHasher
from fastapi import Depends, Request
from jinja2.sandbox import ImmutableSandboxedEnvironment
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, RedirectResponse

from orchestrator.accounts.roles import Permission, can
from orchestrator.accounts.sessions import LiveSession
from orchestrator.audit.log import Actor
from orchestrator.console.forms import Form, parse_form
from orchestrator.console.i18n import LANGUAGES, Catalogs, negotiate
from orchestrator.console.security import (
    BASE,
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    check_csrf_token,
    check_origin,
    local_path,
    session_token,
)
from orchestrator.console.templating import render_page
from orchestrator.errors import PermissionDenied, StepmailError
from orchestrator.runtime import Runtime
from orchestrator.services.accounts import current_session

NAVIGATION = (
    ("home", "/", Permission.READ),
    ("customers", "/customers", Permission.READ),
    ("inbox", "/inbox", Permission.READ),
    ("journeys", "/journeys", Permission.READ),
    ("operations", "/operations/suppressions", Permission.READ),
    ("audit", "/audit", Permission.READ_AUDIT),
    ("users", "/users", Permission.MANAGE_USERS),
)


@dataclass
class ConsoleState:
    runtime: Runtime
    env: ImmutableSandboxedEnvironment
    catalogs: Catalogs
    hasher: PasswordHasher


class LoginRequired(StepmailError):
    """Raised when a page needs a signed-in user and the request has no live session."""


@dataclass
class Page:
    """One request's view of the console: who reads, in which language, and how to answer."""

    request: Request
    state: ConsoleState
    lang: str
    session: LiveSession | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        return self.state.runtime

    @property
    def actor(self) -> Actor:
        assert self.session is not None
        return Actor(self.session.email, self.session.user_id)

    def can(self, permission: str) -> bool:
        return self.session is not None and can(self.session.role, Permission(permission))

    def gettext(self, message: str) -> str:
        return self.state.catalogs.gettext(self.lang, message)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render_page(self.state.env, template, {**self.common(), **context}, status_code)

    def common(self) -> dict[str, Any]:
        path = self.request.url.path
        return {
            "lang": self.lang,
            "languages": LANGUAGES,
            "base": BASE,
            "here": here(self.request),
            "session": self.session,
            "csrf_field": CSRF_FIELD,
            "csrf": self.session.csrf_token if self.session else "",
            "can": self.can,
            "navigation": [
                (key, BASE + link) for key, link, permission in NAVIGATION if self.can(permission)
            ],
            "current": _section(path),
            "now": self.runtime.clock.now(),
            "timezone": self.runtime.settings.default_timezone,
            "done": self.request.query_params.get("done", ""),
        }

    def check_form(self, form: Form) -> None:
        """Same origin, and this session's token: else CsrfRejected (403)."""
        assert self.session is not None
        check_origin(self.runtime.settings, self.request)
        check_csrf_token(self.session.csrf_token, form.get(CSRF_FIELD, max_length=200))


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def reader_language(request: Request) -> str:
    return negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def reader(request: Request) -> Page:
    """Anyone: the sign-in page, the language switch. Knows the session if there is one."""
    state = console_state(request)
    return Page(request, state, reader_language(request), _session(request, state))


def signed_in(request: Request) -> Page:
    page = reader(request)
    if page.session is None:
        raise LoginRequired("sign in first")
    return page


def needs(permission: Permission) -> Any:
    """A dependency: a signed-in user whose role allows ``permission`` (else 403)."""

    def check(page: Annotated[Page, Depends(signed_in)]) -> Page:
        if not page.can(permission):
            assert page.session is not None
            raise PermissionDenied(f"your role ({page.session.role.value}) may not do this")
        return page

    return Depends(check)


async def posted_form(request: Request) -> Form:
    try:
        body = await request.body()
    except ClientDisconnect:  # gone before its body was in: a 400 nobody reads, not a 500
        raise HTTPException(400, "the request body did not arrive") from None
    return parse_form(body)


def _session(request: Request, state: ConsoleState) -> LiveSession | None:
    settings = state.runtime.settings
    token = session_token(settings, request)
    if token is None:
        return None
    return current_session(
        state.runtime.engine,
        token,
        rules=state.runtime.login_rules().sessions,
        clock=state.runtime.clock,
    )


def _section(path: str) -> str:
    rest = path.removeprefix(BASE).strip("/")
    return rest.split("/")[0] if rest else "home"


Reader = Annotated[Page, Depends(reader)]
Posted = Annotated[Form, Depends(posted_form)]


def here(request: Request) -> str:
    """This request's path and query as the browser sent them (still percent-encoded), to come
    back to after an action or a sign-in."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    query = request.url.query
    return path + (f"?{query}" if query else "")


def back(to: str, done: str) -> RedirectResponse:
    """After an action, 303 back to the console page it came from (the form's ``back``; any
    other target becomes the home page), with the key of the notice to show."""
    parts = urlsplit(local_path(to))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    query.append(("done", done))
    return RedirectResponse(f"{parts.path}?{urlencode(query)}", status_code=303)
