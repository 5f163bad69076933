"""Values the door accepted and a later step could never use: moments given as numbers in
text, the server's own clock as a time zone, addresses the mail layer refuses, an id that
cannot be routed (probe L6, L7, L8). Each is a 422 naming the field, and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.hostile import stored_rows
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

NUMBERS_AS_TEXT = ["1700000000", "1700000000000", "1.7e9", " 1700000000 ", "+1700000000"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def refused_naming(response: Any, *loc: str) -> None:
    assert response.status_code == 422, response.text
    assert ["body", *loc] in [error["loc"] for error in response.json()["detail"]], response.text


@pytest.mark.parametrize("moment", NUMBERS_AS_TEXT)
def test_a_moment_is_never_read_from_a_number_in_text(
    client: TestClient, runtime: Runtime, moment: str
) -> None:
    """L6: ``"1700000000"`` was stored as 2023-11-14 UTC (and 13 digits as milliseconds)."""
    refused_naming(post_signup(client, signup_payload(signed_up_at=moment)), "signed_up_at")
    consent = {"source": "signup-form", "given_at": moment}
    refused_naming(post_signup(client, signup_payload(consent=consent)), "consent", "given_at")
    assert stored_rows(runtime)["customer"] == 0
    assert post_signup(client, signup_payload("acme")).status_code == 202
    response = post_events(client, {**event("acme", "login"), "occurred_at": moment})
    refused_naming(response, "occurred_at")
    assert stored_rows(runtime)["usage_event"] == 0


def test_iso_moments_still_pass(client: TestClient) -> None:
    for moment in ("2026-11-02T10:00:00+09:00", "2026-11-02 10:00:00Z"):
        response = post_signup(client, signup_payload(moment[:10], signed_up_at=moment))
        assert response.status_code == 202, response.text


@pytest.mark.parametrize("zone", ["localtime", "Factory"])
def test_the_servers_clock_is_not_a_customers_time_zone(client: TestClient, zone: str) -> None:
    """L6: ``localtime`` is /etc/localtime on the server."""
    refused_naming(post_signup(client, signup_payload(timezone=zone)), "timezone")


@pytest.mark.parametrize(
    "email", ["ü@b.jp", "Evil <a@b.jp>", "<a@b.jp>", '"a b"@b.jp', "山田@example.jp"]
)
def test_an_address_no_mail_can_be_sent_to_is_refused_at_the_door(
    client: TestClient, runtime: Runtime, email: str
) -> None:
    """L7: ``ü@b.jp`` was enrolled and every step ended ``failed: address``; ``Evil
    <a@b.jp>`` was silently stored as ``a@b.jp``."""
    refused_naming(post_signup(client, signup_payload(email=email)), "email")
    refused_naming(post_signup(client, signup_payload(csm_email=email)), "csm_email")
    assert stored_rows(runtime)["customer"] == 0
    assert post_signup(client, signup_payload("acme")).status_code == 202
    response = client.patch("/v1/customers/acme", json={"email": email}, headers=AUTH)
    refused_naming(response, "email")


def test_an_idn_domain_is_still_an_address(client: TestClient) -> None:
    assert post_signup(client, signup_payload(email="taro@例え.jp")).status_code == 202


def test_a_customer_whose_external_id_holds_a_slash_can_be_patched(
    client: TestClient, runtime: Runtime
) -> None:
    """L8: ``acct/fc54`` was enrolled; ``PATCH /v1/customers/acct%2Ffc54`` was 404 for ever
    (``%2F`` is decoded before routing). The console shows such customers too."""
    from urllib.parse import quote

    for odd in ("acct/fc54", "a/b/c", "acct?x", "acct#1", "acct\\x", "acct x"):
        assert post_signup(client, signup_payload(odd, email="x@b.jp")).status_code == 202
        patched = client.patch(
            f"/v1/customers/{quote(odd, safe='')}", json={"plan": "pro"}, headers=AUTH
        )
        assert patched.status_code == 200, (odd, patched.text)
        assert patched.json()["external_id"] == odd
    assert client.patch("/v1/customers/acct%2Fnobody", json={}, headers=AUTH).status_code == 404
