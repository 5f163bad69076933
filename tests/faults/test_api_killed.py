"""``stepmail api`` killed with SIGKILL while signups pour in: every signup it acknowledged is
enrolled, exactly once, and a client retrying what failed (or what it is unsure of) gets the
same customer and enrollments again."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from orchestrator.db.tables import customers, enrollments, scheduled_sends
from tests.faults.harness import Installation, installation
from tests.faults.servers import free_port
from tests.support.environment import SECRET
from tests.support.signups import signed_headers

SIGNUPS = 200
STEPS = 3  # of the test journey each signup enrolls in


def signup_body(n: int) -> bytes:
    payload = {"external_id": f"api-{n}", "email": f"api-{n}@customer.example", "name": "API"}
    return json.dumps(payload).encode()


def post(url: str, n: int) -> dict[str, Any] | None:
    """One signup: the acknowledged answer, or None when the API failed to give one."""
    body = signup_body(n)
    try:
        response = httpx.post(
            url,
            content=body,
            headers=signed_headers(body, SECRET, timestamp=int(time.time())),
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 202:
        return None
    answer: dict[str, Any] = response.json()
    return answer


def up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def rows_per(stepmail: Installation, column: Any) -> Counter[Any]:
    with stepmail.engine.connect() as connection:
        query = select(column, func.count()).group_by(column)
        return Counter(dict(connection.execute(query).all()))


def test_api_killed_mid_request(tmp_path: Path, database_url: str, redis_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hook = f"{base}/hooks/signup"
    with installation(tmp_path, database_url, redis_url) as stepmail:
        api = stepmail.api(port)
        stepmail.wait_for(lambda: up(f"{base}/healthz"), 30, "the API answering")
        acknowledged: dict[int, dict[str, Any]] = {}
        lock = threading.Lock()

        def sign_up(n: int) -> None:
            answer = post(hook, n)
            if answer is not None:
                with lock:
                    acknowledged[n] = answer

        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(sign_up, n) for n in range(SIGNUPS)]
            stepmail.wait_for(lambda: len(acknowledged) >= SIGNUPS // 4, 30, "signups in")
            api.kill()  # requests are in flight: some were stored, some not, some unanswered
            for future in futures:
                future.result()
        assert 0 < len(acknowledged) < SIGNUPS, "the kill landed before or after every request"

        stepmail.api(port)
        stepmail.wait_for(lambda: up(f"{base}/healthz"), 30, "the API answering again")
        retried = {n: post(hook, n) for n in range(SIGNUPS)}  # the client retries every one
        deadline = time.monotonic() + 30
        while any(answer is None for answer in retried.values()) and time.monotonic() < deadline:
            retried = {n: a or post(hook, n) for n, a in retried.items()}

        assert all(answer is not None for answer in retried.values())
        for n, first in acknowledged.items():  # an acknowledged signup is the same one again
            again = retried[n]
            assert again is not None
            assert (again["customer_id"], again["enrollment_ids"]) == (
                first["customer_id"],
                first["enrollment_ids"],
            )
            assert again["created"] is False
        assert rows_per(stepmail, customers.c.external_id) == {
            f"api-{n}": 1 for n in range(SIGNUPS)
        }
        assert set(rows_per(stepmail, enrollments.c.customer_id).values()) == {1}
        assert set(rows_per(stepmail, scheduled_sends.c.enrollment_id).values()) == {STEPS}
