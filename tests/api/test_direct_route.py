"""The hot hooks' route class runs no FastAPI dependencies, so it must refuse what it would
skip, run the one dependency it knows (the bearer check) itself, and keep StrictRoute's
refusals."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.direct_route import DirectRoute
from orchestrator.api.errors import install_error_handler
from tests.support.hostile import AUTH, armed_client, armed_runtime

__all__ = ["armed_client", "armed_runtime"]


async def direct(request: Request) -> Response:
    return Response(b'{"ok":true}', 202, media_type="application/json")


def _app(router: APIRouter, api_key: str | None = "k" * 32) -> TestClient:
    app = FastAPI()
    install_error_handler(app)
    settings = SimpleNamespace(api_key=SecretStr(api_key) if api_key is not None else None)
    app.state.runtime = SimpleNamespace(settings=settings)
    app.include_router(router)
    return TestClient(app)


def test_the_bearer_dependency_is_checked_without_the_gate_in_front() -> None:
    """Defence in depth, as require_api_key on every other /v1 route: this app has no
    BearerGate middleware, so only the route itself can refuse."""
    router = APIRouter(route_class=DirectRoute, dependencies=[ApiKeyAuth])
    router.post("/v1/thing")(direct)
    client = _app(router)
    assert client.post("/v1/thing").status_code == 401
    assert client.post("/v1/thing", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/v1/thing", headers={"Authorization": "Basic " + "k" * 32}).status_code == (
        401
    )
    answered = client.post("/v1/thing", headers={"Authorization": "bearer " + "k" * 32})
    assert answered.status_code == 202
    assert answered.json() == {"ok": True}
    closed = _app(router, api_key=None)
    assert closed.post("/v1/thing", headers={"Authorization": "Bearer x"}).status_code == 401


async def wants_a_header(request: Request, x_thing: str | None = Header(default=None)) -> Response:
    return Response()


async def wants_the_runtime(request: Request, runtime: RuntimeDep) -> Response:
    return Response()


def wants_a_thread(request: Request) -> Response:
    return Response()


def _other() -> None:
    return None


@pytest.mark.parametrize("endpoint", [wants_a_header, wants_the_runtime, wants_a_thread])
def test_an_endpoint_that_declares_more_than_the_request_is_refused(
    endpoint: Callable[..., Any],
) -> None:
    router = APIRouter(route_class=DirectRoute)
    with pytest.raises(TypeError, match="DirectRoute"):
        router.post("/hook")(endpoint)


def test_a_dependency_it_does_not_know_is_refused() -> None:
    router = APIRouter(route_class=DirectRoute, dependencies=[Depends(_other)])
    with pytest.raises(TypeError, match="cannot run the dependency"):
        router.post("/hook")(direct)
    with pytest.raises(TypeError, match="cannot run the dependency"):
        APIRouter(route_class=DirectRoute).post("/hook", dependencies=[Depends(_other)])(direct)


@pytest.mark.parametrize(
    ("path", "headers"), [("/v1/events", AUTH), ("/hooks/signup", {})], ids=["events", "signup"]
)
def test_a_nul_in_a_query_parameter_is_refused_naming_it(
    armed_client: TestClient, path: str, headers: dict[str, str]
) -> None:
    """Before anything else, the signature of the signup hook too."""
    response = armed_client.post(f"{path}?mode=a%00b", content=b"{}", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "mode"]
