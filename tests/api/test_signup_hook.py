"""The signup hook end to end: signature, validation, idempotency, and the day-0 mail."""

from __future__ import annotations

import email
import threading
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.db.models import Customer, Enrollment, ScheduledSend
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.clicks import untracked
from tests.support.delivery import run_due
from tests.support.signups import (
    hook_time,
    outbox_files,
    post_signup,
    signed_headers,
    signup_payload,
)

TIER_CUSTOMERS: dict[str, dict[str, Any]] = {
    "high": {
        "annual_contract_value": 3_600_000,
        "csm_name": "Hanako Sato",
        "csm_email": "hanako@acme.example",
    },
    "low": {"annual_contract_value": 360_000},
    "tech": {"annual_contract_value": 36_000},
}
NAMES: dict[str, dict[str, Any]] = {
    "ja": {"name": "山田 太郎", "company": "株式会社サンプル"},
    "en": {"name": "Jane Doe", "company": "Sample Inc."},
}
HALLMARKS = {  # what only that tier's welcome mail says (links from journeys/onboarding.yaml)
    "high": "book-a-meeting",
    "low": "relay.example/onboarding-sessions",
    "tech": "help.relay.example/getting-started",
}


def read_mail(path: Any) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("tier", ["high", "low", "tech"])
def test_signed_signup_puts_the_tiers_welcome_mail_in_the_outbox(
    client: TestClient, runtime: Runtime, settings: Settings, tier: str, locale: str
) -> None:
    response = post_signup(
        client,
        signup_payload(
            f"c-{tier}-{locale}", locale=locale, **NAMES[locale], **TIER_CUSTOMERS[tier]
        ),
    )

    assert response.status_code == 202, response.text
    assert response.json()["tier"] == tier
    assert run_due(runtime) == ["sent"]
    [path] = outbox_files(settings)
    message = read_mail(path)
    html = untracked(html_of(message), settings)  # links lead through click links
    assert HALLMARKS[tier] in html
    assert all(HALLMARKS[other] not in html for other in HALLMARKS if other != tier)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://stepmail.example.com/unsubscribe/")
    if tier == "high":
        assert "Hanako Sato" in str(message["From"]) and "hanako@acme.example" in str(
            message["Reply-To"]
        )
    else:
        assert message["Reply-To"] is None
    japanese = any("\u3040" <= ch <= "\u30ff" for ch in str(message["Subject"]))
    assert japanese == (locale == "ja")


def test_tier_is_taken_from_the_payload_over_the_contract_value(client: TestClient) -> None:
    response = post_signup(client, signup_payload(annual_contract_value=10, tier="high"))
    assert response.json()["tier"] == "high"


def test_repeated_hook_enrolls_once_and_returns_the_same_ids(
    client: TestClient, runtime: Runtime
) -> None:
    first = post_signup(client, signup_payload()).json()
    second = post_signup(client, signup_payload(name="changed")).json()

    assert (first["customer_id"], first["enrollment_ids"]) == (
        second["customer_id"],
        second["enrollment_ids"],
    )
    assert (first["created"], second["created"]) == (True, False)
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Enrollment)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(ScheduledSend)).scalar() == 6


def test_concurrent_hooks_for_one_customer_enroll_once(
    client: TestClient, runtime: Runtime
) -> None:
    statuses: list[int] = []

    def send() -> None:
        statuses.append(post_signup(client, signup_payload("racer")).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [202] * 8
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Customer)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(Enrollment)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(ScheduledSend)).scalar() == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"tier": "platinum"}, "tier"),
        ({"annual_contract_value": -5}, "annual_contract_value"),
        ({"signed_up_at": "2026-11-01T10:00:00"}, "signed_up_at"),
        ({"nickname": "typo"}, "nickname"),
        ({"name": "Evil\r\nBcc: x@evil.example"}, "name"),
    ],
)
def test_a_bad_body_gets_422_naming_the_field(
    client: TestClient, runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    response = post_signup(client, signup_payload(**change))

    assert response.status_code == 422
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Customer)).scalar() == 0


def test_missing_field_and_broken_json_get_422(client: TestClient) -> None:
    body = b'{"external_id": "x"}'
    now = hook_time(client)
    response = client.post(
        "/hooks/signup", content=body, headers=signed_headers(body, timestamp=now)
    )
    assert response.status_code == 422
    assert ["body", "email"] in [e["loc"] for e in response.json()["detail"]]
    body = b"{not json"
    assert (
        client.post(
            "/hooks/signup", content=body, headers=signed_headers(body, timestamp=now)
        ).status_code
        == 422
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Stepmail-Timestamp": "123"},
        "wrong-secret",
        "stale",
        "tampered",
    ],
)
def test_a_bad_or_stale_signature_gets_401(
    client: TestClient, runtime: Runtime, headers: Any
) -> None:
    body = b'{"external_id": "x", "email": "x@example.com", "name": "X"}'
    now = hook_time(client)
    if headers == "wrong-secret":
        headers = signed_headers(body, secret="not-the-secret", timestamp=now)
    elif headers == "stale":
        headers = signed_headers(body, timestamp=now - 301)
    elif headers == "tampered":
        headers = signed_headers(body, timestamp=now)
        body = body.replace(b"X", b"Y")
    response = client.post(
        "/hooks/signup", content=body, headers={"Content-Type": "application/json", **headers}
    )

    assert response.status_code == 401
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Customer)).scalar() == 0


def test_healthz_and_openapi_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/hooks/signup"]["post"]["requestBody"]["content"]["application/json"]
    assert "external_id" in body["schema"]["properties"]
    assert client.get("/docs").status_code == 200
