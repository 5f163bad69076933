"""Dependencies shared by routes."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from orchestrator.errors import ApiKeyRequired, AuthenticationError, WrongApiKey
from orchestrator.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


_bearer = HTTPBearer(auto_error=False, description="STEPMAIL_API_KEY")


def bearer_refusal(expected: SecretStr | None, given: str | None) -> AuthenticationError | None:
    """Why a request with bearer token ``given`` may not use /v1 (None: it may). One place,
    shared by the route dependency and the gate that runs before any body is read.

    A blank key counts as none here too, whatever the settings let through: an empty token
    must never match an empty key.
    """
    if expected is None or not expected.get_secret_value().strip():
        return ApiKeyRequired()
    if not given or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        return WrongApiKey()
    return None


def require_api_key(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """``Authorization: Bearer <STEPMAIL_API_KEY>``; with no key configured, /v1 is closed."""
    given = credentials.credentials if credentials else None
    refusal = bearer_refusal(runtime.settings.api_key, given)
    if refusal is not None:
        raise refusal


ApiKeyAuth = Depends(require_api_key)


def check_api_key(request: Request) -> None:
    """:func:`require_api_key` as a plain call, for the routes that resolve no dependencies
    (``api/direct_route.py``)."""
    runtime: Runtime = request.app.state.runtime
    refusal = bearer_refusal(runtime.settings.api_key, bearer_token(request.scope["headers"]))
    if refusal is not None:
        raise refusal


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` among raw ASGI headers (the scheme
    case-insensitive, as HTTPBearer reads it)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None
