"""Fixtures and helpers shared by the SendGrid delivery, webhook and suppression tests: a
runtime whose transport posts to a local FakeSendGrid, and a signer for the event webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.clock import Clock, FrozenClock
from orchestrator.db.tables import scheduled_sends
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.settings import Settings
from tests.fakes.sendgrid_events import EventSigner
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.support.environment import STANDARD_JOURNEYS, FixedDraw, make_settings

API_KEY = "test-api-key"
CLIENT_TIMEOUT = 0.3  # the fake's "hang" outlasts it: an unknown outcome

# Two small journeys over the shipped templates, so these tests do not move when the shipped
# journeys gain steps. Both start at signup; "trial" is the second journey of the same address.
JOURNEYS = {
    "onboarding": """
id: onboarding
name: Onboarding
steps:
  - {id: welcome, after: 0d, template: onboarding/welcome}
  - {id: basics, after: 1d, template: onboarding/basics}
  - {id: faq, after: 3d, template: onboarding/faq}
""",
    "trial": """
id: trial
name: Trial
steps:
  - {id: welcome, after: 0d, template: onboarding/welcome}
  - {id: tips, after: 2d, template: onboarding/faq}
""",
}


def write_journeys(directory: Path, *names: str) -> Path:
    """Write the named test journeys (with the shipped template ``vars``) into ``directory``."""
    shipped = yaml.safe_load((STANDARD_JOURNEYS / "onboarding.yaml").read_text("utf-8"))
    template_vars = yaml.safe_dump({"vars": shipped["vars"]})
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = template_vars + JOURNEYS[name]
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(hang_seconds=1.0) as server:
        yield server


@pytest.fixture
def signer() -> EventSigner:
    return EventSigner()


def sendgrid_settings(
    tmp_path: Path, database_url: str, fake: FakeSendGrid, signer: EventSigner, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "journeys_dir": write_journeys(tmp_path / "journeys", "onboarding"),
        "mail_transport": "sendgrid",
        "sendgrid_api_key": fake.api_key,
        "sendgrid_api_host": fake.url,
        "sendgrid_timeout": CLIENT_TIMEOUT,
        "sendgrid_webhook_public_key": signer.public_key,
        "api_key": API_KEY,
        **overrides,
    }
    return make_settings(tmp_path, database_url, **values)


@pytest.fixture
def sg_settings(
    tmp_path: Path, database_url: str, fake_sendgrid: FakeSendGrid, signer: EventSigner
) -> Settings:
    return sendgrid_settings(tmp_path, database_url, fake_sendgrid, signer)


@pytest.fixture
def sg_runtime(sg_settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(sg_settings, clock=clock, jitter=FixedDraw())
    yield runtime
    runtime.close()


@pytest.fixture
def sg_client(sg_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(sg_runtime)) as client:
        yield client


def post_events(
    client: TestClient,
    signer: EventSigner,
    clock: Clock,
    events: list[dict[str, Any]],
    *,
    timestamp: int | None = None,
) -> httpx.Response:
    """POST a signed batch as SendGrid would, timestamped by the test's clock."""
    body = json.dumps(events).encode()
    stamp = int(clock.now().timestamp()) if timestamp is None else timestamp
    response: httpx.Response = client.post(
        "/hooks/sendgrid", content=body, headers=signer.headers(body, stamp)
    )
    return response


def send_row(runtime: Runtime, step_id: str, journey_id: str = "onboarding") -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(
            select(scheduled_sends).where(
                scheduled_sends.c.step_id == step_id, scheduled_sends.c.journey_id == journey_id
            )
        ).one()
