"""Secrets where they are used: an empty key opens nothing, whatever the settings let through,
and no public value signs a hook or an unsubscribe link."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, suppressions
from orchestrator.enrollment.signature import sign, verify
from orchestrator.errors import InvalidSignature, InvalidUnsubscribeToken
from orchestrator.recipients.unsubscribe_links import make_unsubscribe_token, read_unsubscribe_token
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, Settings, load_settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.environment import make_settings
from tests.support.signups import hook_time, signed_headers, signup_payload

SUPPRESSION = {"email": "someone@customer.example"}


@contextmanager
def serve(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.close()


def without_hook_secret(tmp_path: Path, database_url: str, **values: Any) -> Settings:
    """The test settings as an operator who never set STEPMAIL_SIGNUP_HOOK_SECRET has them."""
    test_values = make_settings(tmp_path, database_url).model_dump(exclude={"signup_hook_secret"})
    return load_settings(_env_file=None, **{**test_values, **values})


def post_signed_signup(client: TestClient, secret: str, external_id: str = "cust-1") -> Any:
    body = json.dumps(signup_payload(external_id)).encode()
    return client.post(
        "/hooks/signup",
        content=body,
        headers=signed_headers(body, secret, timestamp=hook_time(client)),
    )


@pytest.fixture
def blank_key_client(
    tmp_path: Path, database_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("STEPMAIL_API_KEY", "")
    with serve(make_settings(tmp_path, database_url), clock) as client:
        yield client


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer  "])
def test_an_empty_api_key_variable_leaves_v1_closed(
    blank_key_client: TestClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = blank_key_client.post("/v1/suppressions", json=SUPPRESSION, headers=headers)
    assert response.status_code == 401
    assert blank_key_client.get("/v1/suppressions", headers=headers).status_code == 401


@pytest.mark.parametrize("key", ["", "   "])
def test_the_api_refuses_an_empty_key_that_bypassed_the_settings(
    tmp_path: Path, database_url: str, clock: FrozenClock, key: str
) -> None:
    settings = make_settings(tmp_path, database_url).model_copy(update={"api_key": SecretStr(key)})
    with serve(settings, clock) as client:
        assert client.post("/v1/suppressions", json=SUPPRESSION).status_code == 401
        bearer = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/suppressions", json=SUPPRESSION, headers=bearer).status_code == 401


@pytest.mark.parametrize("environment", ["development", "production"])
def test_an_empty_hook_secret_accepts_no_signature_made_with_an_empty_key(
    tmp_path: Path, database_url: str, clock: FrozenClock, environment: str
) -> None:
    settings = make_settings(tmp_path, database_url, environment=environment, signup_hook_secret="")
    with serve(settings, clock) as client:
        assert post_signed_signup(client, "").status_code == 401
        assert post_signed_signup(client, "  ").status_code == 401


def test_the_hook_refuses_an_empty_secret_that_bypassed_the_settings(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, database_url).model_copy(
        update={"signup_hook_secret": SecretStr("")}
    )
    with serve(settings, clock) as client:
        response = post_signed_signup(client, "")
        assert response.status_code == 401
        assert "no signing secret" in response.json()["detail"]


def test_a_production_hook_without_a_secret_refuses_the_public_default(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    settings = without_hook_secret(tmp_path, database_url, environment="production")
    with serve(settings, clock) as client:
        assert post_signed_signup(client, DEVELOPMENT_SIGNUP_HOOK_SECRET).status_code == 401


@pytest.mark.parametrize("secret", ["", " ", "\t"])
def test_verify_refuses_every_request_when_the_secret_is_blank(secret: str) -> None:
    body, now = b"{}", time.time()
    with pytest.raises(InvalidSignature, match="no signing secret"):
        verify(secret, str(int(now)), sign(secret, int(now), body), body, now=now, tolerance=300)


def test_unsubscribe_tokens_need_a_secret() -> None:
    with pytest.raises(ValueError, match="signing secret"):
        make_unsubscribe_token("", "public-id")
    forged = "public-id.Xo4Nf0nmYq6uFq2i3mS2dq1t2x6F3hXq0wA7bC8dE9g"
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token("", forged)


def test_a_link_signed_with_the_public_default_unsubscribes_no_one(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    """Development, no secrets set: the hook takes the public default (that is what `make run`
    is for), but unsubscribe links are signed with a key of this process, so knowing the
    public default does not let anyone stop someone else's mail."""
    settings = without_hook_secret(tmp_path, database_url, environment="development")
    with serve(settings, clock) as client:
        assert post_signed_signup(client, DEVELOPMENT_SIGNUP_HOOK_SECRET).status_code == 202
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        with runtime.engine.connect() as connection:
            public_id = connection.execute(select(customers.c.public_id)).scalar_one()
        public_key = "unsubscribe:" + DEVELOPMENT_SIGNUP_HOOK_SECRET
        forged = make_unsubscribe_token(public_key, public_id)
        response = client.post(f"/unsubscribe/{forged}", content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 400
        with runtime.engine.connect() as connection:
            assert connection.execute(select(suppressions)).first() is None
        genuine = make_unsubscribe_token(settings.signing_secret(), public_id)
        assert client.post(f"/unsubscribe/{genuine}").status_code == 200
