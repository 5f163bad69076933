"""Property-based tests of the whole OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation gets generated requests, valid and invalid by its schema (including NUL and
other hostile characters), with the right bearer token; the signed hooks get each generated
body signed by :class:`SigningAdapter`, so the fuzzer reaches past the signature check into
parsing and storage. A request fails the build if its answer is a 5xx, has a status the
document does not list, breaks the documented schema or content type, or if a request the
schema forbids is accepted. (Whether every schema-valid request is accepted is not asked:
acceptance also depends on data — an unknown customer is a 404 — and on checks a schema
cannot state, such as IANA time-zone names.)

Bounded so CI stays fast: a fixed seed, no example database, a few dozen cases per operation
(``FUZZ_EXAMPLES=500 FUZZ_SEED=7 .venv/bin/pytest tests/test_fuzz_api.py`` digs deeper, by
hand). ``from_fixture`` is not used: schemathesis 4.32 reads a pytest-internal attribute that
pytest 9 removed, so the document is built once at collection and the app comes per test.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from orchestrator.enrollment.signature import sign
from tests.fakes.sendgrid_events import SIGNATURE, TIMESTAMP
from tests.support.environment import SECRET, START
from tests.support.hostile import API_KEY, SIGNER, enroll, hostile_runtime

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": int(os.environ.get("FUZZ_SEED", "20261102")),
        "auth": {"openapi": {"HTTPBearer": {"bearer": API_KEY}}},
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": int(os.environ.get("FUZZ_EXAMPLES", "12")),
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)


class SigningAdapter:
    """Signs each hook request as its sender would (test secrets), after the fuzzer built it:
    HMAC for ``/hooks/signup``, SendGrid's ECDSA for ``/hooks/sendgrid``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in ("/hooks/signup", "/hooks/sendgrid"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if not k.startswith(b"x-")]
        headers += [(k.lower().encode(), v.encode()) for k, v in _signature(path, body).items()]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def _signature(path: str, body: bytes) -> dict[str, str]:
    stamp = str(int(START.timestamp()))  # the runtime's frozen clock: both hooks read it
    if path == "/hooks/signup":
        return {"X-Stepmail-Timestamp": stamp, "X-Stepmail-Signature": sign(SECRET, stamp, body)}
    return {TIMESTAMP: stamp, SIGNATURE: SIGNER.sign(body, stamp)}


def _document() -> dict[str, Any]:
    """The OpenAPI document, built once when the module is collected (on a scratch database:
    a runtime records its journeys' versions when it starts)."""
    with tempfile.TemporaryDirectory(prefix="stepmail-openapi-") as folder:
        url = f"sqlite:///{Path(folder) / 'openapi.db'}"
        upgrade(url)
        runtime = hostile_runtime(Path(folder), url)
        try:
            return create_app(runtime).openapi()
        finally:
            runtime.close()


schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)


@pytest.fixture
def signed_app(tmp_path: Path, database_url: str) -> Iterator[SigningAdapter]:
    """The service on this test's database, with one customer, behind the signing adapter."""
    runtime = hostile_runtime(tmp_path, database_url)
    app = create_app(runtime)
    with TestClient(app) as client:
        enroll(client, "a1")  # a customer for the paths and events that name one
    yield SigningAdapter(app)
    runtime.close()


@schema.parametrize()
def test_no_answer_is_a_5xx_or_breaks_the_document(case: Any, signed_app: SigningAdapter) -> None:
    case.call_and_validate(
        app=signed_app,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
