"""``POST /v1/events`` under concurrency: small requests that wait while a group runs are
stored together, and each client still gets its own answer, its own error and its own tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator.api import events as event_routes
from orchestrator.api.app import create_app
from orchestrator.db.tables import usage_events
from orchestrator.runtime import Runtime
from orchestrator.services.event_groups import track_event_group
from orchestrator.settings import Settings
from orchestrator.usage.events import EventSubmission
from tests.support.environment import make_settings
from tests.support.handoff import high_touch
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


async def post_all(runtime: Runtime, bodies: Sequence[Any]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepmail") as client:
        return await asyncio.gather(
            *(client.post("/v1/events", json=body, headers=AUTH) for body in bodies)
        )


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

    answers = asyncio.run(post_all(runtime, bodies))

    assert [a.status_code for a in answers] == [202] * 12 + [404, 202, 202, 422]
    stored = [(a.json()["stored"], a.json()["duplicates"]) for a in answers[:12]]
    assert stored == [(1, 0)] * 12 and answers[13].json()["stored"] == 0
    assert answers[15].json()["detail"][0]["loc"] == ["body", "events", 1, "external_id"]
    assert len(answers[14].json()["task_ids"]) == 2  # the detractor's, in its own answer
    assert sum(groups) >= len(bodies) and max(groups) > 1
    with runtime.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(usage_events)).scalar()
    assert count == 13  # e0..e11 and nps: nothing of the failed requests
