"""The console's defences, in one place: response headers (a strict CSP, no framing, no
sniffing), signed cookies, and the two CSRF checks every state-changing form passes.

- **Session cookie** ``stepmail_console``: a random token signed with the console key
  (``Settings.console_key``), HttpOnly, SameSite=Lax, ``Secure`` when ``PUBLIC_BASE_URL`` or the
  request is https, path ``/console``. The server keeps only the token's hash
  (:mod:`orchestrator.accounts.sessions`), so logging out ends it everywhere at once.
- **CSRF**: each form carries its session's synchronizer token (compared in constant time),
  and the request's ``Origin`` (or, without one, its ``Referer``) must be this site. The login
  form, before any session exists, carries a token signed over a random cookie of its own
  (signed double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.errors import CsrfRejected
from orchestrator.settings import Settings

BASE = "/console"
SESSION_COOKIE = "stepmail_console"
LANGUAGE_COOKIE = "stepmail_lang"
LOGIN_COOKIE = "stepmail_login"
CSRF_FIELD = "csrf_token"
LANGUAGE_MAX_AGE = 365 * 24 * 3600

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# A previewed mail is shown in a sandboxed frame: its inline styles are the mail's own, it may
# not run anything, load anything from elsewhere, or submit anything.
MAIL_FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}
MAIL_FRAME_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": MAIL_FRAME_CSP,
    "X-Frame-Options": "SAMEORIGIN",
}


def _signer(settings: Settings, purpose: str) -> Signer:
    return Signer(
        settings.console_key(), salt=f"stepmail.console.{purpose}.v1", digest_method=hashlib.sha256
    )


def sign_session(settings: Settings, token: str) -> str:
    return _signer(settings, "session").sign(token).decode()


def session_token(settings: Settings, request: Request) -> str | None:
    """The session token from a cookie this server signed; None for no cookie or a forged one."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value or len(value) > 200:
        return None
    try:
        return _signer(settings, "session").unsign(value).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def is_secure(settings: Settings, request: Request) -> bool:
    return settings.public_base_url.startswith("https://") or request.url.scheme == "https"


def set_session_cookie(
    response: Response, settings: Settings, request: Request, token: str, max_age: int
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(settings, token),
        max_age=max_age,
        path=BASE,
        httponly=True,
        samesite="lax",
        secure=is_secure(settings, request),
    )


def clear_session_cookie(response: Response, settings: Settings, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=BASE,
        httponly=True,
        samesite="lax",
        secure=is_secure(settings, request),
    )


def set_language_cookie(
    response: Response, settings: Settings, request: Request, language: str
) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_MAX_AGE,
        path=BASE,
        httponly=True,
        samesite="lax",
        secure=is_secure(settings, request),
    )


# -- CSRF -------------------------------------------------------------------------------------


def check_origin(settings: Settings, request: Request) -> None:
    """The form was posted by a page of this site: its ``Origin`` (or ``Referer``) is the
    request's own origin or ``PUBLIC_BASE_URL``'s."""
    ours = {_origin(str(request.base_url)), _origin(settings.public_base_url)}
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        if origin.rstrip("/") in ours:
            return
        raise CsrfRejected("the form came from another site")
    referer = request.headers.get("referer")
    if referer and _origin(referer) in ours:
        return
    raise CsrfRejected("the form's origin could not be checked (no Origin or Referer)")


def check_csrf_token(expected: str, given: str) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise CsrfRejected("the form's security token is missing or out of date")


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_form_token(settings: Settings, nonce: str) -> str:
    """The login form's token: an HMAC of the nonce in its cookie (signed double submit)."""
    return _signer(settings, "login").get_signature(nonce).decode()


def check_login_form(settings: Settings, request: Request, given: str) -> None:
    check_origin(settings, request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or len(nonce) > 100:
        raise CsrfRejected("the sign-in form has expired: open it again")
    check_csrf_token(login_form_token(settings, nonce), given)


def set_login_cookie(response: Response, settings: Settings, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=BASE,
        httponly=True,
        samesite="lax",
        secure=is_secure(settings, request),
    )


def local_path(candidate: str | None, default: str = BASE + "/") -> str:
    """A console path to go back to after an action; anything else (another site, ``//x``,
    a backslash trick) becomes ``default``."""
    if (
        not candidate
        or not candidate.startswith(BASE + "/")
        or candidate.startswith("//")
        or "\\" in candidate
        or any(ord(c) < 32 for c in candidate)
        or len(candidate) > 2000
    ):
        return default
    return candidate


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
