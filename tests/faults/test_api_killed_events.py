"""``stepmail api`` killed with SIGKILL while single events pour in from many clients (so they
are stored in groups, ``orchestrator/services/event_groups.py``): every event it acknowledged
is stored exactly once, and a client retrying every event after the restart stores each one
that was lost and nothing twice."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from orchestrator.db.tables import usage_events
from tests.faults.harness import API_KEY, Installation, installation
from tests.faults.servers import free_port
from tests.faults.test_api_killed import post, up

CUSTOMERS = 4
EVENTS = 3000
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


def track(client: httpx.Client, url: str, n: int) -> dict[str, Any] | None:
    """One event: the acknowledged answer, or None when the API failed to give one."""
    event = {"external_id": f"api-{n % CUSTOMERS}", "name": "login", "id": f"evt-{n}"}
    try:
        response = client.post(url, content=json.dumps(event), headers=HEADERS, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 202:
        return None
    answer: dict[str, Any] = response.json()
    return answer


def stored_keys(stepmail: Installation) -> dict[str, int]:
    with stepmail.engine.connect() as connection:
        query = select(usage_events.c.event_key, func.count()).group_by(usage_events.c.event_key)
        return {key: count for key, count in connection.execute(query)}


def test_api_killed_while_events_come_in(tmp_path: Path, database_url: str, redis_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/events"
    with installation(tmp_path, database_url, redis_url) as stepmail:
        api = stepmail.api(port)
        stepmail.wait_for(lambda: up(f"{base}/healthz"), 30, "the API answering")
        assert all(post(f"{base}/hooks/signup", n) for n in range(CUSTOMERS))
        acknowledged: dict[int, dict[str, Any]] = {}
        lock = threading.Lock()
        local = threading.local()

        def send(n: int) -> None:
            if not hasattr(local, "client"):
                local.client = httpx.Client()
            answer = track(local.client, url, n)
            if answer is not None:
                with lock:
                    acknowledged[n] = answer

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(send, n) for n in range(EVENTS)]
            stepmail.wait_for(lambda: len(acknowledged) >= EVENTS // 10, 30, "events in")
            api.kill()  # groups are in flight: some stored, some not, some unanswered
            for future in futures:
                future.result()
        assert 0 < len(acknowledged) < EVENTS, "the kill landed before or after every request"
        assert all(answer["stored"] == 1 for answer in acknowledged.values())
        stored = stored_keys(stepmail)
        assert all(stored.get(f"evt-{n}") == 1 for n in acknowledged)  # acknowledged: stored

        stepmail.api(port)
        stepmail.wait_for(lambda: up(f"{base}/healthz"), 30, "the API answering again")
        with httpx.Client() as client:
            retried = {n: track(client, url, n) for n in range(EVENTS)}
        assert all(answer is not None for answer in retried.values())
        for n in acknowledged:  # stored before: a duplicate now, nothing done again
            again = retried[n]
            assert again is not None and (again["stored"], again["duplicates"]) == (0, 1)
        assert stored_keys(stepmail) == {f"evt-{n}": 1 for n in range(EVENTS)}
