"""``/v1/suppressions``: operators read and edit the suppression list through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.sendgrid import (
    API_KEY,
    fake_sendgrid,
    sg_client,
    sg_runtime,
    sg_settings,
    signer,
)

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_the_api_needs_the_bearer_key(sg_client: TestClient) -> None:
    assert sg_client.get("/v1/suppressions").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        sg_client.post("/v1/suppressions", json={"email": "a@b.example"}, headers=wrong).status_code
        == 401
    )
    assert sg_client.delete("/v1/suppressions/a@b.example").status_code == 401


def test_add_list_and_remove_through_the_api(sg_client: TestClient) -> None:
    created = sg_client.post(
        "/v1/suppressions",
        json={"email": "Taro@Example.JP", "reason": "legal", "source": "ticket 42"},
        headers=AUTH,
    )
    assert created.status_code == 201
    assert created.json()["email"] == "taro@example.jp"
    again = sg_client.post("/v1/suppressions", json={"email": "taro@example.jp"}, headers=AUTH)
    assert (again.status_code, again.json()["reason"]) == (200, "legal")
    sg_client.post("/v1/suppressions", json={"email": "b@example.jp"}, headers=AUTH)

    listed = sg_client.get("/v1/suppressions", headers=AUTH).json()["items"]
    assert {e["email"] for e in listed} == {"taro@example.jp", "b@example.jp"}
    only_legal = sg_client.get("/v1/suppressions", params={"reason": "legal"}, headers=AUTH)
    assert [e["source"] for e in only_legal.json()["items"]] == ["ticket 42"]

    assert sg_client.delete("/v1/suppressions/TARO@example.jp", headers=AUTH).status_code == 204
    assert sg_client.delete("/v1/suppressions/taro@example.jp", headers=AUTH).status_code == 404
    assert [
        e["email"] for e in sg_client.get("/v1/suppressions", headers=AUTH).json()["items"]
    ] == ["b@example.jp"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "not-an-address"}, "email"), ({"email": "a@b.example", "reason": ""}, "reason")],
)
def test_a_bad_field_is_a_422_naming_it(
    sg_client: TestClient, body: dict[str, str], field: str
) -> None:
    response = sg_client.post("/v1/suppressions", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
