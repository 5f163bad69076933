"""``PATCH /v1/customers/{external_id}``: bad fields and unknown customers are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.settings import Settings
from tests.support.environment import STANDARD_JOURNEYS, make_settings
from tests.support.signups import post_signup
from tests.support.signups import signup_payload as base_payload
from tests.support.usage import API_KEY, AUTH


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    return STANDARD_JOURNEYS


@pytest.fixture
def settings(tmp_path: Path, database_url: str, journeys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=journeys_dir)


def signup_payload(external_id: str, **overrides: object) -> dict[str, object]:
    return base_payload(external_id, email=f"{external_id}@customer.example", **overrides)


def test_patch_refuses_bad_fields_and_unknown_customers(client: TestClient) -> None:
    post_signup(client, signup_payload("someone"))
    bad = client.patch("/v1/customers/someone", json={"tier": "platinum"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "tier"]
    null = client.patch("/v1/customers/someone", json={"email": None}, headers=AUTH)
    assert null.status_code == 422
    assert client.patch("/v1/customers/nobody", json={}, headers=AUTH).status_code == 404
    merged = client.patch(
        "/v1/customers/someone", json={"attributes": {"seats": 40}, "tier": "low"}, headers=AUTH
    ).json()
    assert merged["attributes"]["seats"] == 40 and merged["tier_explicit"]


def test_attributes_cannot_grow_past_one_bodys_worth_patch_by_patch(client: TestClient) -> None:
    """Each patch fits the body's limit, but merged they grew without end (9 MB after 150,
    each answered 200, every mail to the customer reading them whole): the patch that would
    pass the bound is refused naming the field and changes nothing; nulls shrink them again."""
    post_signup(client, signup_payload("grows"))
    chunk = "x" * 500
    answers = [
        client.patch(
            "/v1/customers/grows",
            json={"attributes": {f"k{n}-{i}": chunk for i in range(40)}, "plan": f"p{n}"},
            headers=AUTH,
        )
        for n in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 422]
    refused = answers[-1].json()["detail"][0]
    assert refused["loc"] == ["body", "attributes"] and "at most 65,536" in refused["msg"]
    kept = client.get("/v1/customers/grows", headers=AUTH).json()
    assert len(kept["attributes"]) == 120 and kept["plan"] == "p2"  # the refused patch: nothing
    removal = {f"k0-{i}": None for i in range(40)}
    shrunk = client.patch("/v1/customers/grows", json={"attributes": removal}, headers=AUTH)
    assert shrunk.status_code == 200 and len(shrunk.json()["attributes"]) == 80
