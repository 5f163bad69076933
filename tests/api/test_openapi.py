"""The OpenAPI document is valid and says what the API does: every reference resolves, every
error a route can give is listed, and a field the API refuses as null is not offered as null.
(That the answers match the document is checked by the fuzzer, tests/test_fuzz_api.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from orchestrator.api.app import create_app
from orchestrator.customers.changes import NOT_NULL
from orchestrator.db.migrate import upgrade
from tests.support.hostile import AUTH, armed_client, armed_runtime, hostile_runtime

__all__ = ["armed_client", "armed_runtime"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    url = f"sqlite:///{tmp / 'stepmail.db'}"
    upgrade(url)
    runtime = hostile_runtime(Path(tmp), url)
    document = create_app(runtime).openapi()
    runtime.close()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    """The signup body used to point at #/components/schemas/ConsentIn, which was never there."""
    for reference in _references(spec):
        assert reference.startswith("#/"), reference
        target: Any = spec
        for part in reference[2:].split("/"):
            assert part in target, f"dangling $ref {reference}"
            target = target[part]


def test_v1_operations_document_401_and_422(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        if path.startswith("/v1"):
            assert {"401", "422"} <= set(operation["responses"]), f"{method} {path}"
            assert operation["security"] == [{"HTTPBearer": []}]


def test_operations_with_a_body_document_413(spec: dict[str, Any]) -> None:
    with_body = [(m, p, op) for m, p, op in _operations(spec) if "requestBody" in op]
    assert len(with_body) >= 6
    for method, path, operation in with_body:
        assert "413" in operation["responses"], f"{method} {path}"


def test_the_unsubscribe_routes_document_their_error_pages(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        if path.startswith("/unsubscribe"):
            responses = operation["responses"]
            assert {"400", "404", "422"} <= set(responses), f"{method} {path}"
            assert "text/html" in responses["400"]["content"]
            if method == "POST":
                assert "413" in responses
            for status in ("413", "422"):  # JSON beside the pages, not text/html
                if status in responses:
                    assert list(responses[status]["content"]) == ["application/json"], path


def test_error_answers_have_one_documented_shape(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["detail"]
    assert schemas["FieldError"]["required"] == ["type", "loc", "msg"]
    for method, path, operation in _operations(spec):
        for status, answer in operation["responses"].items():
            if "text/html" in answer.get("content", {}):
                continue  # the unsubscribe link's pages, for people
            if status in {"401", "404", "413", "503"}:
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Problem", f"{method} {path} {status}"
            if status == "422":
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/InvalidInput", f"{method} {path}"


def test_customer_patch_offers_null_only_where_the_api_takes_it(spec: dict[str, Any]) -> None:
    fields = spec["components"]["schemas"]["CustomerPatch"]["properties"]
    for name in NOT_NULL:
        assert "null" not in str(fields[name]), name
    for name in ("tier", "csm_name", "csm_email"):
        assert {"type": "null"} in fields[name]["anyOf"], name


def test_every_route_refuses_hostile_input_the_same_way(tmp_path: Path) -> None:
    from orchestrator.api.routing import StrictRoute

    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    runtime = hostile_runtime(tmp_path, url)
    routes = _api_routes(create_app(runtime).routes)
    runtime.close()
    assert routes
    assert all(isinstance(route, StrictRoute) for route in routes), [
        route.path for route in routes if not isinstance(route, StrictRoute)
    ]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every API route, those of included routers too (FastAPI keeps those apart)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_api_routes(route.original_router.routes))
    return found


@pytest.mark.parametrize(
    ("path", "methods"),
    [("/unsubscribe/{token}", {"GET", "POST"}), ("/v1/suppressions", {"GET", "POST"})],
)
def test_a_405_names_every_method_of_the_path(
    armed_client: TestClient, path: str, methods: set[str]
) -> None:
    """Probe L12: ``OPTIONS /unsubscribe/{token}`` answered ``Allow: GET`` (RFC 9110: the
    methods the target supports)."""
    schema = armed_client.get("/openapi.json").json()
    assert {m.upper() for m in schema["paths"][path]} == methods
    response = armed_client.request("OPTIONS", path.replace("{token}", "x"), headers=AUTH)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= methods


def _schema_of(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """A component, or the signup hook's body (written inline: the route reads raw bytes)."""
    if name == "SignupRequest":
        body = spec["paths"]["/hooks/signup"]["post"]["requestBody"]
        inline: dict[str, Any] = body["content"]["application/json"]["schema"]
        return inline
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def _string_branch(field: dict[str, Any]) -> dict[str, Any]:
    """A field's string schema, inside ``anyOf`` when it may also be null or a number."""
    if field.get("type") == "string":
        return field
    return next(item for item in field["anyOf"] if item.get("type") == "string")


def test_the_schema_states_what_the_door_refuses(spec: dict[str, Any]) -> None:
    """Probe L12: a generated client sent what the document allowed and got a 422 — a control
    character in a header-bound field, a moment in year 5000, an empty contract value. The
    document now says each rule, and the one-line pattern is exactly the validator's."""
    import re

    from orchestrator.guards.mail_headers import ONE_LINE_PATTERN, unsafe_character

    header_bound = {
        "SignupRequest": ("external_id", "name", "company", "plan", "csm_name"),
        "CustomerPatch": ("name", "company", "plan", "csm_name"),
    }
    for schema_name, fields in header_bound.items():
        properties = _schema_of(spec, schema_name)["properties"]
        for field in fields:
            assert _string_branch(properties[field])["pattern"] == ONE_LINE_PATTERN, field
    pattern = re.compile(ONE_LINE_PATTERN)
    for code in range(0x10000):
        character = chr(code)
        assert (pattern.fullmatch(character) is None) == (unsafe_character(character) is not None)

    moment = _string_branch(_schema_of(spec, "SignupRequest")["properties"]["signed_up_at"])
    assert moment["format"] == "date-time"
    years = re.compile(moment["pattern"])
    assert years.match("2026-11-30T09:00:00+09:00") and years.match("1970-01-01T00:00:00Z")
    assert not years.match("5000-01-01T00:00:00Z") and not years.match("0001-01-01T00:00:00Z")

    money = _schema_of(spec, "SignupRequest")["properties"]["annual_contract_value"]
    assert re.search(_string_branch(money)["pattern"], "1200000.50")
    assert not re.search(_string_branch(money)["pattern"], "")
