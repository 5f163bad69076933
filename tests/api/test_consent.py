"""The signup's ``consent`` object: a bad one is a 422 naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.db.tables import consent_records
from orchestrator.runtime import Runtime
from tests.support.signups import post_signup, signup_payload


def records(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(consent_records)).all())


@pytest.mark.parametrize(
    ("consent", "field"),
    [
        ({"given_at": "2026-10-30T09:15:00"}, "given_at"),
        ({"source": ""}, "source"),
        ({"source": "a\nb"}, "source"),
        ({"text_version": "x" * 101}, "text_version"),
        ({"agreed": True}, "agreed"),
    ],
)
def test_a_bad_consent_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, runtime: Runtime, consent: dict[str, Any], field: str
) -> None:
    response = post_signup(client, signup_payload(consent=consent))
    assert response.status_code == 422
    assert ["body", "consent", field] in [error["loc"] for error in response.json()["detail"]]
    assert records(runtime) == []
