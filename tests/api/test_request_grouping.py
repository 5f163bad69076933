"""``POST /v1/events`` and ``POST /hooks/signup`` under concurrency: requests that wait while
a group runs are stored together, and each client still gets its own answer, its own error
and (events) its own tasks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator.api import events as event_routes
from orchestrator.api import signup as signup_routes
from orchestrator.api.app import create_app
from orchestrator.db.tables import customers, usage_events
from orchestrator.runtime import Runtime
from orchestrator.services.event_groups import track_event_group
from orchestrator.services.signup_groups import SignedSignup, enroll_signed_group
from orchestrator.settings import Settings
from orchestrator.usage.events import EventSubmission
from tests.support.environment import make_settings
from tests.support.handoff import high_touch
from tests.support.signups import hook_time, post_signup, signed_headers, signup_payload
from tests.support.usage import API_KEY, AUTH, event


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


async def post_all(
    runtime: Runtime, path: str, requests: Sequence[tuple[bytes, dict[str, str]]]
) -> list[httpx.Response]:
    """Every request at once, on one app: they reach the route while the first group runs."""
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepmail") as client:
        return await asyncio.gather(
            *(client.post(path, content=body, headers=headers) for body, headers in requests)
        )


def events(*bodies: Any) -> list[tuple[bytes, dict[str, str]]]:
    headers = {**AUTH, "Content-Type": "application/json"}
    return [(json.dumps(body).encode(), headers) for body in bodies]


def test_concurrent_event_requests_are_grouped_and_answered_each_on_its_own(
    client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_signup(client, signup_payload("small"))
    post_signup(client, high_touch("big"))
    groups: list[int] = []

    def recorded(engine: Any, submissions: Sequence[EventSubmission], **rest: Any) -> Any:
        groups.append(len(submissions))
        return track_event_group(engine, submissions, **rest)

    monkeypatch.setattr(event_routes, "track_event_group", recorded)
    bodies: list[Any] = [event("small", "login", id=f"e{n}") for n in range(12)]
    bodies += [
        event("nobody", "login", id="lost"),
        event("small", "login", id="e0"),  # a repeat of the first
        event("big", "nps_submitted", id="nps", properties={"score": 2}),
        {"events": [event("small", "report_created", id="b1"), event("nobody", "login")]},
    ]

    answers = asyncio.run(post_all(runtime, "/v1/events", events(*bodies)))

    assert [a.status_code for a in answers] == [202] * 12 + [404, 202, 202, 422]
    stored = [(a.json()["stored"], a.json()["duplicates"]) for a in answers[:12]]
    assert stored == [(1, 0)] * 12 and answers[13].json()["stored"] == 0
    assert answers[15].json()["detail"][0]["loc"] == ["body", "events", 1, "external_id"]
    assert len(answers[14].json()["task_ids"]) == 2  # the detractor's, in its own answer
    assert sum(groups) >= len(bodies) and max(groups) > 1
    with runtime.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(usage_events)).scalar()
    assert count == 13  # e0..e11 and nps: nothing of the failed requests


def test_concurrent_signups_are_grouped_and_answered_each_on_its_own(
    client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[int] = []

    def recorded(engine: Any, requests: Sequence[SignedSignup], **rest: Any) -> Any:
        groups.append(len(requests))
        return enroll_signed_group(engine, requests, **rest)

    monkeypatch.setattr(signup_routes, "enroll_signed_group", recorded)
    at = hook_time(client)
    payloads = [signup_payload(f"c{n}") for n in range(10)] + [signup_payload("c3")]
    requests = [(body, signed_headers(body, timestamp=at)) for body in map(encoded, payloads)]
    forged = encoded(signup_payload("forged"))
    requests.append((forged, signed_headers(forged, "wrong-secret", timestamp=at)))

    answers = asyncio.run(post_all(runtime, "/hooks/signup", requests))

    assert [a.status_code for a in answers] == [202] * 11 + [401]
    assert [a.json()["created"] for a in answers[:11]] == [True] * 10 + [False]
    assert answers[10].json()["customer_id"] == answers[3].json()["customer_id"]
    assert sum(groups) == len(requests) and max(groups) > 1
    with runtime.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(customers)).scalar()
    assert count == 10


def encoded(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
