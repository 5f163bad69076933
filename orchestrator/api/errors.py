"""The API's one exception handler: every :class:`~orchestrator.errors.StepmailError` a route
or a service raises is answered from what the error says of itself (its status, its JSON
``detail``, its headers), so no route maps errors to answers on its own.

The body is FastAPI's own error shape, ``{"detail": ...}``: a sentence, or for a bad field the
list of ``{"type", "loc", "msg"}``. Bad links from mails are the exception: their answer is a
page in the reader's language (:func:`orchestrator.api.unsubscribe.bad_link_page`,
:func:`orchestrator.api.clicks.bad_click_page`).
Exceptions outside the family stay FastAPI's 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from orchestrator.api.clicks import bad_click_page
from orchestrator.api.unsubscribe import bad_link_page
from orchestrator.errors import BadClickLink, BadUnsubscribeLink, StepmailError


def error_response(exc: StepmailError) -> JSONResponse:
    """The JSON answer for ``exc`` (also what the bearer gate sends before any route runs)."""
    return JSONResponse(
        {"detail": jsonable_encoder(exc.http_detail())},
        status_code=exc.http_status,
        headers=exc.http_headers() or None,
    )


async def handle_stepmail_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StepmailError)
    if isinstance(exc, BadUnsubscribeLink):
        return bad_link_page(exc, request.app.state.runtime.settings.sender_contact)
    if isinstance(exc, BadClickLink):
        return bad_click_page(request, request.app.state.runtime.settings.sender_contact)
    return error_response(exc)


def install_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(StepmailError, handle_stepmail_error)
