"""Consent records (特定電子メール法): stored once, at the enrollment that creates the customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.db.tables import consent_records
from orchestrator.runtime import Runtime
from tests.support.environment import START
from tests.support.signups import post_signup, signup_payload

CONSENT = {
    "source": "webinar-form",
    "given_at": "2026-10-30T09:15:00+09:00",
    "text_version": "terms-2026-10",
    "details": {"form_url": "https://relay.example/webinars/signup"},
}


def records(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(consent_records)).all())


def test_the_signups_consent_is_recorded_once(client: TestClient, runtime: Runtime) -> None:
    payload = signup_payload(consent=CONSENT)
    assert post_signup(client, payload).status_code == 202
    assert post_signup(client, payload).status_code == 202  # a repeated hook adds nothing

    (record,) = records(runtime)
    assert (record.source, record.text_version) == ("webinar-form", "terms-2026-10")
    assert record.given_at == datetime(2026, 10, 30, 0, 15, tzinfo=UTC)
    assert record.recorded_at == START
    assert record.details == {
        "form_url": "https://relay.example/webinars/signup",
        "email": "cust-1@customer.example",
    }


def test_without_consent_the_signup_itself_is_recorded(
    client: TestClient, runtime: Runtime
) -> None:
    signed_up = "2026-11-01T08:00:00+09:00"
    assert post_signup(client, signup_payload(signed_up_at=signed_up)).status_code == 202
    (record,) = records(runtime)
    assert (record.source, record.text_version) == ("signup", "signup-terms-v1")
    assert record.given_at == datetime.fromisoformat(signed_up)


def test_a_partial_consent_takes_the_defaults_for_the_rest(
    client: TestClient, runtime: Runtime
) -> None:
    post_signup(client, signup_payload(consent={"text_version": "v7"}))
    (record,) = records(runtime)
    assert (record.source, record.text_version, record.given_at) == ("signup", "v7", START)
