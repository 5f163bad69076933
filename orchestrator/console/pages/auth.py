"""Signing in and out, and choosing the UI language."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from orchestrator.console.deps import Page, Posted, Reader
from orchestrator.console.i18n import LANGUAGES
from orchestrator.console.security import (
    BASE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    check_login_form,
    clear_session_cookie,
    local_path,
    login_form_token,
    new_login_nonce,
    set_language_cookie,
    set_login_cookie,
    set_session_cookie,
)
from orchestrator.errors import LoginRefused, LoginThrottled
from orchestrator.services import accounts

router = APIRouter()


@router.get("/login")
def login_form(page: Reader, next: str = "") -> Response:
    if page.session is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return _login_page(page, next)


@router.post("/login")
def log_in(page: Reader, form: Posted) -> Response:
    settings = page.runtime.settings
    target = local_path(form.get("next", max_length=2000))
    check_login_form(settings, page.request, form.get(CSRF_FIELD, max_length=200))
    client = page.request.client.host if page.request.client else "unknown"
    try:
        signed = accounts.sign_in(
            page.runtime.engine,
            form.get("email", max_length=320),
            form.get("password", max_length=1024),
            client,
            rules=page.runtime.login_rules(),
            hasher=page.state.hasher,
            clock=page.runtime.clock,
        )
    except LoginThrottled:
        return _login_page(page, target, error="throttled", status=429)
    except LoginRefused:
        return _login_page(
            page, target, error="refused", status=401, email=form.get("email", max_length=320)
        )
    response = RedirectResponse(target, status_code=303)
    lifetime = page.runtime.settings.console_session_lifetime
    set_session_cookie(response, settings, page.request, signed.token, lifetime)
    response.delete_cookie(LOGIN_COOKIE, path=BASE)
    return response


@router.post("/logout")
def log_out(page: Reader, form: Posted) -> Response:
    response = RedirectResponse(f"{BASE}/login?done=signed_out", status_code=303)
    if page.session is not None:
        page.check_form(form)
        accounts.sign_out(page.runtime.engine, page.session, clock=page.runtime.clock)
    clear_session_cookie(response, page.runtime.settings, page.request)
    return response


@router.get("/language")
def choose_language(page: Reader, lang: str = "", next: str = "") -> Response:
    """Remember the UI language (a cookie, nothing stored) and go back."""
    response = RedirectResponse(local_path(next), status_code=303)
    if lang in LANGUAGES:
        set_language_cookie(response, page.runtime.settings, page.request, lang)
    return response


def _login_page(
    page: Page, next_path: str, *, error: str = "", status: int = 200, email: str = ""
) -> Response:
    settings = page.runtime.settings
    nonce = new_login_nonce()
    response = page.render(
        "login.html",
        status,
        next=local_path(next_path),
        login_token=login_form_token(settings, nonce),
        error=error,
        email=email,
    )
    set_login_cookie(response, settings, page.request, nonce)
    return response
