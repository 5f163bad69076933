"""The one exception handler answers exactly as FastAPI answered the HTTPExceptions the routes
raised before: same status, headers and bytes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from orchestrator.api.errors import install_error_handler
from orchestrator.errors import (
    ApiKeyRequired,
    ConfigurationError,
    CustomerNotFound,
    InvalidEventBatch,
    InvalidRequest,
    InvalidSignature,
    NotSuppressed,
    StepmailError,
    UnknownCustomers,
    WrongApiKey,
)

FIELD = [{"type": "missing", "loc": ["body", "email"], "msg": "Field required"}]
CASES: list[tuple[StepmailError, HTTPException]] = [
    (InvalidSignature("signature does not match"), HTTPException(401, "signature does not match")),
    (ApiKeyRequired(), HTTPException(401, "STEPMAIL_API_KEY is not configured")),
    (
        WrongApiKey(),
        HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}),
    ),
    (CustomerNotFound("no customer 'x'"), HTTPException(404, "no customer 'x'")),
    (NotSuppressed("a@example.com"), HTTPException(404, "address is not suppressed")),
    (InvalidRequest(FIELD), HTTPException(422, FIELD)),
    (InvalidEventBatch(FIELD), HTTPException(400, FIELD)),
    (ConfigurationError("KEY is bad"), HTTPException(503, "KEY is bad")),
    (
        UnknownCustomers([(0, "c1")], batched=False),
        HTTPException(404, "unknown customer(s): events[0].external_id 'c1'"),
    ),
    (
        UnknownCustomers([(1, "c2")]),
        HTTPException(
            422,
            [
                {
                    "type": "unknown_customer",
                    "loc": ["body", "events", 1, "external_id"],
                    "msg": "unknown customer 'c2'",
                }
            ],
        ),
    ),
]


def answer(raise_: Exception) -> Any:
    app = FastAPI()
    install_error_handler(app)

    @app.get("/")
    def route() -> None:
        raise raise_

    with TestClient(app) as client:
        return client.get("/")


@pytest.mark.parametrize(("error", "before"), CASES, ids=lambda c: type(c).__name__)
def test_the_answer_is_the_one_the_http_exception_gave(
    error: StepmailError, before: HTTPException
) -> None:
    now, then = answer(error), answer(before)
    assert now.status_code == then.status_code
    assert now.content == then.content
    assert now.headers == then.headers
