"""Large ``POST /v1/events`` bodies are read and tracked at most ``BATCHES_AT_ONCE`` at a time,
shared out among the API's processes (the others wait as bytes, so their models do not weigh
on every garbage collection), and every such request still gets its own answer or its own
422."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.api import events as event_routes
from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import usage_events
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.event_groups import track_event_group
from orchestrator.services.events import track_events
from orchestrator.settings import Settings
from orchestrator.usage.events import EventSubmission
from tests.support.environment import START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event

HEADERS = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


async def post_all(
    runtime: Runtime, bodies: Sequence[bytes], processes: int = 1
) -> list[httpx.Response]:
    """Every body at once, on one app (one of ``processes``)."""
    transport = httpx.ASGITransport(app=create_app(runtime, processes=processes))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepmail") as client:
        posts = (client.post("/v1/events", content=body, headers=HEADERS) for body in bodies)
        return await asyncio.wait_for(asyncio.gather(*posts), timeout=120)


def batch(tag: str, size: int, customers: Sequence[str]) -> dict[str, Any]:
    return {
        "events": [
            event(customers[n % len(customers)], "login", id=f"{tag}-{n}") for n in range(size)
        ]
    }


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def stored(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(usage_events)).scalar_one())


def test_the_slots_are_shared_out_among_the_processes() -> None:
    """The database bears the batches of every process: N processes hold about as many at
    once as one, each at least one."""
    shares = {n: event_routes.slots_per_process(n) for n in (1, 2, 3, 4, 10, 64)}
    assert shares == {1: 10, 2: 5, 3: 4, 4: 3, 10: 1, 64: 1}
    assert event_routes.BATCHES_AT_ONCE == 10  # the shares above are of ten


@pytest.mark.parametrize(("processes", "configured"), [(1, None), (2, None), (2, 3)])
def test_large_batches_are_tracked_at_most_batches_at_once_at_a_time(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    processes: int,
    configured: int | None,
) -> None:
    """One process holds BATCHES_AT_ONCE large bodies at a time; one of two, half as many;
    with ``STEPMAIL_API_BATCH_SLOTS`` (processes started one by one), as many as it says."""
    settings = make_settings(tmp_path, database_url, api_key=API_KEY, api_batch_slots=configured)
    runtime = build_runtime(settings, clock=FrozenClock(START))
    slots = configured or event_routes.slots_per_process(processes)
    try:
        with TestClient(create_app(runtime)) as client:
            _batches_at_once(client, runtime, monkeypatch, processes, slots)
    finally:
        runtime.close()


def _batches_at_once(
    client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, processes: int, slots: int
) -> None:
    customers = [f"c{n}" for n in range(3)]
    for external_id in customers:
        assert post_signup(client, signup_payload(external_id)).status_code == 202
    running, most = 0, 0
    lock = threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)  # long enough for the other requests to reach the route
            return track_events(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(event_routes, "track_events", counted)
    count = slots + 2  # more than the slots: some must wait
    bodies = [encoded(batch(f"b{k}", 300, customers)) for k in range(count)]
    assert min(map(len, bodies)) > event_routes.GATED_FROM_BYTES

    answers = asyncio.run(post_all(runtime, bodies, processes))

    assert [a.status_code for a in answers] == [202] * count
    assert [a.json()["stored"] for a in answers] == [300] * count
    assert most == slots
    assert stored(runtime) == 300 * count


def test_a_bad_large_body_is_a_422_naming_the_field_and_gives_its_slot_back(
    client: Any, runtime: Runtime
) -> None:
    """More bad bodies than slots, then a good one: each bad one is refused with its own
    field, and the good one still finds a slot."""
    assert post_signup(client, signup_payload("c0")).status_code == 202
    good = batch("good", 300, ["c0"])
    poisons = {
        "nul": ('"id-\\u0000"', ["body", "events", 200, "id"]),
        "surrogate": ('"\\ud800"', ["body", "events", 200, "id"]),
        "big-int": ("9223372036854775808", ["body", "events", 200, "properties", "n"]),
        "nan": ("NaN", ["body", "events", 200, "properties", "n"]),
        "unknown": ('"nobody"', ["body", "events", 200, "external_id"]),
    }
    rounds = event_routes.BATCHES_AT_ONCE // len(poisons) + 1  # more bad bodies than slots
    cases = list(poisons.items()) * rounds
    bodies = []
    for n, (name, (fragment, loc)) in enumerate(cases):
        body = batch(f"{name}-{n}", 300, ["c0"])
        field = loc[4] if loc[3] == "properties" else loc[3]
        if loc[3] == "properties":
            body["events"][200]["properties"] = {field: "__P__"}
        else:
            body["events"][200][field] = "__P__"
        bodies.append(encoded(body).replace(b'"__P__"', fragment.encode()))
    bodies.append(encoded(good))

    answers = asyncio.run(post_all(runtime, bodies))

    assert [a.status_code for a in answers] == [422] * len(cases) + [202]
    for answer, (name, (_fragment, loc)) in zip(answers[:-1], cases, strict=True):
        assert [error["loc"] for error in answer.json()["detail"]] == [loc], name
    assert stored(runtime) == 300


def test_a_few_events_in_a_large_body_still_wait_for_their_group(
    client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post_signup(client, signup_payload("c0")).status_code == 202
    grouped: list[int] = []

    def recorded(engine: Any, submissions: Sequence[EventSubmission], **rest: Any) -> Any:
        grouped.append(sum(len(s.events) for s in submissions))
        return track_event_group(engine, submissions, **rest)

    monkeypatch.setattr(event_routes, "track_event_group", recorded)
    large = {
        "events": [
            event("c0", "login", id=f"p{n}", properties={"note": "x" * 9000}) for n in range(2)
        ]
    }
    body = encoded(large)
    assert len(body) > event_routes.GATED_FROM_BYTES

    [answer] = asyncio.run(post_all(runtime, [body]))

    assert answer.status_code == 202 and answer.json()["stored"] == 2
    assert grouped == [2]
    assert stored(runtime) == 2
