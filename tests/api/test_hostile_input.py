"""Hostile values in every JSON body, path and query get a 4xx naming the field, on SQLite and
PostgreSQL alike, and nothing of the request is stored: out-of-range integers and moments, deep
nesting, lone surrogates (values and keys), NUL characters, NaN and Infinity."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.db.tables import customers
from orchestrator.runtime import Runtime
from tests.support.hostile import (
    AUTH,
    armed_client,
    armed_runtime,
    enroll,
    sendgrid_raw,
    signup_raw,
    stored_rows,
    v1_raw,
)
from tests.support.signups import signup_payload

__all__ = ["armed_client", "armed_runtime"]

Poster = Callable[[TestClient, bytes], httpx.Response]

# Raw JSON fragments: most cannot even be written by json.dumps.
POISONS = {
    "lone-surrogate": '"\\ud800"',
    "low-surrogate": '"x\\udfff"',
    "nul": '"a\\u0000b"',
    "nan": "NaN",
    "infinity": "-Infinity",
    "overflowing-float": "1e400",
    "int-past-64-bits": "9223372036854775808",
    "nested-3000-deep": '{"a":' * 3000 + "1" + "}" * 3000,
    "nested-40-deep": "[" * 40 + "]" * 40,
}


def _events(client: TestClient, body: bytes) -> httpx.Response:
    return v1_raw(client, "POST", "/v1/events", body)


def _patch(client: TestClient, body: bytes) -> httpx.Response:
    return v1_raw(client, "PATCH", "/v1/customers/a1", body)


def _suppress(client: TestClient, body: bytes) -> httpx.Response:
    return v1_raw(client, "POST", "/v1/suppressions", body)


def _with(payload: dict[str, Any], place: list[str], fragment: str) -> bytes:
    """``payload`` as JSON with the raw ``fragment`` at ``place`` (a path of object keys)."""
    marker = "__POISON__"
    target = payload
    for key in place[:-1]:
        target = target.setdefault(key, {})
    target[place[-1]] = marker
    return json.dumps(payload).replace(f'"{marker}"', fragment).encode()


EVENT = {"external_id": "a1", "name": "report_created"}
# (route, poster, payload, where the poison goes, the loc the answer must name)
PLACES: list[tuple[str, Poster, dict[str, Any], list[str], list[Any]]] = [
    ("signup-attributes", signup_raw, signup_payload("p1"), ["attributes", "s"], []),
    ("signup-consent", signup_raw, signup_payload("p1"), ["consent", "details", "k"], []),
    ("event-properties", _events, EVENT, ["properties", "v"], []),
    ("batch-properties", _events, {"events": [EVENT]}, ["events"], []),
    ("patch-attributes", _patch, {}, ["attributes", "s"], []),
    ("suppression-source", _suppress, {"email": "x@example.com"}, ["source"], []),
]


@pytest.mark.parametrize(
    ("poster", "payload", "place"),
    [pytest.param(p, body, where, id=name) for name, p, body, where, _ in PLACES],
)
def test_a_poisoned_json_body_is_a_422_naming_the_field_and_stores_nothing(
    armed_client: TestClient,
    armed_runtime: Runtime,
    poster: Poster,
    payload: dict[str, Any],
    place: list[str],
) -> None:
    enroll(armed_client)
    before = stored_rows(armed_runtime)
    for name, poison in POISONS.items():
        if place == ["events"]:  # inside the second item of a batch
            body = json.dumps({"events": [EVENT, {**EVENT, "properties": {"v": "__P__"}}]})
            raw = body.replace('"__P__"', poison).encode()
            expected_loc = ["body", "events", 1, "properties", "v"]
        else:
            raw = _with(json.loads(json.dumps(payload)), place, poison)
            expected_loc = ["body", *place]

        response = poster(armed_client, raw)

        assert response.status_code == 422, (name, response.text)
        [error] = response.json()["detail"]
        assert set(error) >= {"type", "loc", "msg"}, name
        if error["type"] == "json_too_deep":  # named where the depth ran out, however deep
            assert error["loc"][: len(expected_loc)] == expected_loc, (name, error["loc"])
        else:
            assert error["loc"] == expected_loc, name
    assert stored_rows(armed_runtime) == before


def test_a_poisoned_key_is_refused_too(armed_client: TestClient) -> None:
    enroll(armed_client)
    for key in ['"\\ud800"', '"k\\u0000"']:
        raw = ('{"attributes": {"ok": {' + key + ": 1}}}").encode()

        response = _patch(armed_client, raw)

        assert response.status_code == 422, key
        [error] = response.json()["detail"]
        assert error["loc"][:3] == ["body", "attributes", "ok"]
        assert error["msg"].startswith("key ")


def test_a_surrogate_patch_is_refused_and_later_patches_still_work(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    """Item 8: it used to commit, then fail to serialise, then fail on every later PATCH."""
    enroll(armed_client)

    refused = _patch(armed_client, b'{"attributes":{"s":"\\ud800"}}')
    later = armed_client.patch("/v1/customers/a1", json={"plan": "pro"}, headers=AUTH)

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "attributes", "s"]
    assert later.status_code == 200
    assert later.json()["attributes"] == {}
    with armed_runtime.engine.connect() as connection:
        attributes = connection.execute(select(customers.c.attributes)).scalar_one()
    assert attributes == {}


SENDGRID_POISONS = [  # (body, the loc the answer names; None: somewhere in item 0)
    (b'[{"event": "open", "email": "\\ud800"}]', ["body", 0, "email"]),
    (b'[{"event": "open", "\\udfff": 1}]', ["body", 0, "\\udfff"]),
    (b'[{"event": "open", "sg_event_id": "a\\u0000"}]', ["body", 0, "sg_event_id"]),
    (b'[{"event": "open", "timestamp": NaN}]', ["body", 0, "timestamp"]),
    (b"[" * 5000 + b"]" * 5000, ["body"] + [0] * 32),  # where the bound is passed
    (b'[{"event": "open", "n": ' + b"[" * 100 + b"]" * 100 + b"}]", None),
]


def test_a_poisoned_sendgrid_batch_is_a_400_naming_the_item(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    for body, loc in SENDGRID_POISONS:
        response = sendgrid_raw(armed_client, body)

        assert response.status_code == 400, body[:60]
        [error] = response.json()["detail"]
        if loc is None:
            assert error["loc"][:2] == ["body", 0]
        else:
            assert error["loc"] == loc
    assert stored_rows(armed_runtime) == {"customer": 0, "usage_event": 0, "suppression": 0}


def test_a_send_id_past_the_id_column_is_not_ours_and_no_500(armed_client: TestClient) -> None:
    """Row ids are INTEGER on PostgreSQL: a bigger id cannot be one of our sends."""
    for send_id in ["2147483648", "9223372036854775807", 2147483648]:
        event = {"event": "open", "email": "x@example.com", "stepmail_send_id": send_id}

        response = sendgrid_raw(armed_client, json.dumps([event]).encode())

        assert response.status_code == 200, send_id
        assert response.json()["recorded"] == 1


def test_a_nul_in_a_signup_field_is_a_422_naming_it(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    for field in ["external_id", "name", "company", "plan", "csm_name", "email"]:
        payload = signup_payload("n1")
        payload[field] = "a\x00b"

        response = signup_raw(armed_client, json.dumps(payload).encode())

        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert stored_rows(armed_runtime)["customer"] == 0


def test_a_nul_in_an_event_field_is_a_422_naming_it(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    enroll(armed_client)
    for field in ["external_id", "id", "name"]:
        event = {"external_id": "a1", "name": "login", "id": "e-1", field: "a1\x00"}

        response = _events(armed_client, json.dumps(event).encode())

        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert stored_rows(armed_runtime)["usage_event"] == 0


NUL_PARAMETERS = [
    ("PATCH", "/v1/customers/a1%00", ["path", "external_id"]),
    ("DELETE", "/v1/suppressions/x%00%40example.com", ["path", "email"]),
    ("GET", "/v1/suppressions?reason=a%00", ["query", "reason"]),
    ("GET", "/v1/tasks?status=open&x=%00", ["query", "x"]),
    ("GET", "/unsubscribe/t%00k", ["path", "token"]),
]


def test_a_nul_in_a_path_or_query_is_a_422_naming_it(armed_client: TestClient) -> None:
    enroll(armed_client)
    for method, path, loc in NUL_PARAMETERS:
        response = armed_client.request(method, path, json={"plan": "x"}, headers=AUTH)

        assert response.status_code == 422, path
        assert response.json()["detail"][0]["loc"] == loc


INTEGERS_OUT_OF_RANGE = [
    ("POST", "/v1/tasks/9223372036854775808/close", ["path", "task_id"]),
    ("POST", "/v1/tasks/2147483648/close", ["path", "task_id"]),  # id columns are 32-bit
    ("POST", "/v1/tasks/0/close", ["path", "task_id"]),
    ("POST", "/v1/tasks/-1/close", ["path", "task_id"]),
    ("POST", "/v1/tasks/" + "9" * 5000 + "/close", ["path", "task_id"]),
    ("GET", "/v1/suppressions?limit=9223372036854775808", ["query", "limit"]),
    ("GET", "/v1/suppressions?limit=9223372036854775808", ["query", "limit"]),
    ("GET", "/v1/tasks?limit=-9223372036854775809", ["query", "limit"]),
]


def test_an_integer_the_database_cannot_hold_in_a_path_or_query_is_a_422(
    armed_client: TestClient,
) -> None:
    for method, path, loc in INTEGERS_OUT_OF_RANGE:
        response = armed_client.request(method, path, headers=AUTH)

        assert response.status_code == 422, path[:60]
        assert response.json()["detail"][0]["loc"] == loc
    # The largest id the column holds is a plain miss.
    assert armed_client.post("/v1/tasks/2147483647/close", headers=AUTH).status_code == 404


EXTREME_MOMENTS = [
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "1969-12-31T23:59:59+00:00",
    "3000-01-01T00:00:00+00:00",
]
NUMBERS_FOR_MOMENTS = [0, 1700000000, 1.5, True]  # pydantic alone read numbers as seconds
MOMENT_PLACES = [
    pytest.param(signup_raw, signup_payload("m1"), ["signed_up_at"], id="signed_up_at"),
    pytest.param(signup_raw, signup_payload("m1"), ["consent", "given_at"], id="given_at"),
    pytest.param(_events, dict(EVENT), ["occurred_at"], id="occurred_at"),
]


@pytest.mark.parametrize(("poster", "payload", "place"), MOMENT_PLACES)
def test_a_moment_outside_1970_to_3000_or_not_text_is_a_422_naming_the_field(
    armed_client: TestClient,
    armed_runtime: Runtime,
    poster: Poster,
    payload: dict[str, Any],
    place: list[str],
) -> None:
    enroll(armed_client)
    before = stored_rows(armed_runtime)
    for value in [*EXTREME_MOMENTS, *NUMBERS_FOR_MOMENTS]:
        raw = _with(json.loads(json.dumps(payload)), place, json.dumps(value))

        response = poster(armed_client, raw)

        assert response.status_code == 422, (value, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", *place]
    assert stored_rows(armed_runtime) == before


def test_moments_at_the_edges_of_the_range_are_accepted(armed_client: TestClient) -> None:
    enroll(armed_client)
    for index, moment in enumerate(["1970-01-01T09:00:00+09:00", "2999-12-31T23:59:59+00:00"]):
        event = {**EVENT, "id": f"edge-{index}", "occurred_at": moment}
        assert _events(armed_client, json.dumps(event).encode()).status_code == 202


def test_a_contract_value_out_of_range_is_a_422(armed_client: TestClient) -> None:
    enroll(armed_client)
    for value in ["1e20", "100000000000000", "-1", "1.001"]:
        body = ('{"annual_contract_value": ' + value + "}").encode()

        response = _patch(armed_client, body)

        assert response.status_code == 422, value
        assert response.json()["detail"][0]["loc"] == ["body", "annual_contract_value"]


def test_null_for_a_field_that_cannot_be_null_names_the_field(armed_client: TestClient) -> None:
    enroll(armed_client)
    for field in ["email", "name", "timezone", "attributes", "plan"]:
        response = _patch(armed_client, json.dumps({field: None}).encode())

        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]


TEXT_AS_SENT = [
    ("external_id", "x" * 255 + " "),  # 256 as sent: the schema's maxLength is 255
    ("name", "Taro\r\n"),  # a line break at the end is still a line break
    ("company", "\nAcme"),
    ("locale", " ja"),
    ("name", "   "),  # required text, blank
]


def test_text_is_checked_as_sent_before_it_is_trimmed(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    for field, value in TEXT_AS_SENT:
        payload = signup_payload("t1")
        payload[field] = value

        response = signup_raw(armed_client, json.dumps(payload).encode())

        assert response.status_code == 422, (field, value)
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert stored_rows(armed_runtime)["customer"] == 0


def test_surrounding_spaces_are_still_trimmed(armed_client: TestClient) -> None:
    payload = signup_payload("t2", name="  Taro  ", company=" Acme ")

    response = signup_raw(armed_client, json.dumps(payload).encode())

    assert response.status_code == 202
    customer = armed_client.patch("/v1/customers/t2", json={}, headers=AUTH).json()
    assert (customer["name"], customer["company"]) == ("Taro", "Acme")


EVENT_TEXT_AS_SENT = [
    ("external_id", "a" * 255 + " ", "string_too_long"),  # 256 as sent
    ("external_id", "   ", "value_error"),  # required text, blank
    ("id", "e" * 200 + "\n", "string_too_long"),
    ("id", " \r\n", "value_error"),
    ("name", "login ", "string_pattern_mismatch"),
]


def test_event_text_is_checked_as_sent_then_trimmed(
    armed_client: TestClient, armed_runtime: Runtime
) -> None:
    """Alone and as the 3rd event of a batch: the same refusal, naming the field."""
    enroll(armed_client)
    before = stored_rows(armed_runtime)
    for field, value, kind in EVENT_TEXT_AS_SENT:
        item = {**EVENT, "id": "t-1", field: value}
        for body, loc in [
            (item, ["body", field]),
            ({"events": [EVENT, EVENT, item]}, ["body", "events", 2, field]),
        ]:
            response = _events(armed_client, json.dumps(body).encode())

            assert response.status_code == 422, (field, value)
            [error] = response.json()["detail"]
            assert (error["loc"], error["type"]) == (loc, kind), (field, value)
    assert stored_rows(armed_runtime) == before

    trimmed = _events(armed_client, json.dumps({**EVENT, "id": " t-2\n"}).encode())
    again = _events(
        armed_client, json.dumps({**EVENT, "external_id": " a1 ", "id": "t-2"}).encode()
    )

    assert trimmed.json()["stored"] == 1
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)
