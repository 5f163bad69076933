"""The client against the real API app (both databases): signed signups, events single and
batched, customer patches, suppressions and CSM tasks; and every call made twice by a retry
after its first answer was lost still happens once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from stepmail_client import RetryPolicy, StepmailApiError, StepmailClient, StepmailConnectionError

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, enrollments, suppressions, usage_events
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import SECRET, make_settings
from tests.support.processes import free_port
from tests.support.usage import API_KEY

Scope = dict[str, Any]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


class AnswerLost:
    """In front of the real app: each route's first request is processed, then its answer is
    thrown away and a 503 sent instead, as when a proxy or the network loses a response; the
    app's clock moves a second on before the retry arrives."""

    def __init__(self, app: Any, clock: FrozenClock) -> None:
        self.app, self.clock = app, clock
        self.lost: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        key = f"{scope.get('method')} {scope.get('path')}"
        if scope["type"] != "http" or key in self.lost:
            await self.app(scope, receive, send)
            return
        self.lost.append(key)

        async def discard(_message: Any) -> None:
            return None

        await self.app(scope, receive, discard)
        self.clock.advance(timedelta(seconds=1))
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def stepmail(app: Any, runtime: Runtime, **kwargs: Any) -> Iterator[StepmailClient]:
    """A client of ``app`` whose clock is the app's (it signs signups and dates events)."""
    with TestClient(app) as http:
        yield StepmailClient(
            "http://testserver",
            API_KEY,
            signup_secret=SECRET,
            http=http,
            sleep=lambda _seconds: None,
            clock=lambda: runtime.clock.now().timestamp(),
            **kwargs,
        )


@pytest.fixture
def client(runtime: Runtime) -> Iterator[StepmailClient]:
    yield from stepmail(create_app(runtime), runtime)


def count(runtime: Runtime, table: Any) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_signed_signup_enrolls_once(client: StepmailClient, runtime: Runtime) -> None:
    first = client.signup("acct_42", "taro@customer.example", "山田 太郎", locale="ja", plan="pro")
    again = client.signup("acct_42", "taro@customer.example", "山田 太郎", locale="ja", plan="pro")
    assert first["created"] is True and again["created"] is False
    assert {**first, "created": False} == again
    assert count(runtime, customers) == 1 and count(runtime, enrollments) >= 1


def test_a_signup_with_the_wrong_secret_is_refused(runtime: Runtime) -> None:
    for wrong in stepmail(create_app(runtime), runtime, retry=RetryPolicy(attempts=1)):
        wrong._signup_secret = "not-the-secret"
        with pytest.raises(StepmailApiError) as raised:
            wrong.signup("acct_42", "taro@customer.example", "Taro")
    assert raised.value.status == 401
    assert count(runtime, customers) == 0


def test_events_single_and_batched(client: StepmailClient, runtime: Runtime) -> None:
    client.signup("acct_42", "taro@customer.example", "Taro")
    assert client.track("acct_42", "login", id="l-1", device="web")["stored"] == 1
    assert client.track("acct_42", "login", id="l-1")["duplicates"] == 1
    batch: list[dict[str, Any]] = [
        {"external_id": "acct_42", "name": "report_created", "id": "r-1"},
        {"external_id": "acct_42", "name": "nps_submitted", "properties": {"score": 9}},
    ]
    assert client.track_many(batch) == {
        "stored": 2,
        "duplicates": 0,
        "task_ids": [],
        "uncatalogued": 0,
        "uncatalogued_names": [],
    }
    with pytest.raises(StepmailApiError) as raised:
        client.track_many([{"external_id": "nobody", "name": "login"}])
    assert raised.value.status == 422
    assert raised.value.detail[0]["loc"] == ["body", "events", 0, "external_id"]
    assert count(runtime, usage_events) == 3


def test_a_customer_patch_and_the_task_it_opens(client: StepmailClient) -> None:
    client.signup("acct_42", "taro@customer.example", "Taro", annual_contract_value=360000)
    view = client.update_customer(
        "acct_42", annual_contract_value=Decimal("3600000"), attributes={"seats": 40}
    )
    assert view["tier"] == "high" and view["attributes"] == {"seats": 40}
    (task,) = client.list_tasks()
    assert task["kind"] == "new_high_touch" and task["external_id"] == "acct_42"
    assert client.close_task(task["id"])["status"] == "closed"
    assert client.close_task(task["id"])["status"] == "closed"
    assert client.list_tasks() == []
    assert [t["id"] for t in client.list_tasks(status="closed")] == [task["id"]]
    with pytest.raises(StepmailApiError) as raised:
        client.update_customer("nobody", plan="pro")
    assert raised.value.status == 404


def test_suppressions(client: StepmailClient) -> None:
    entry = client.suppress("Taro@Customer.example", reason="manual", source="crm")
    assert entry["source"] == "crm"
    assert client.suppress("taro@customer.example") == entry
    assert [e["email"] for e in client.list_suppressions(reason="manual")] == [entry["email"]]
    assert client.list_suppressions(reason="bounce") == []
    assert client.unsuppress(entry["email"]) is True
    assert client.unsuppress(entry["email"]) is False
    assert client.list_suppressions() == []


def test_every_call_whose_answer_was_lost_is_retried_and_happens_once(runtime: Runtime) -> None:
    assert isinstance(runtime.clock, FrozenClock)
    app = AnswerLost(create_app(runtime), runtime.clock)
    for client in stepmail(app, runtime):
        accepted = client.signup("acct_42", "taro@customer.example", "Taro")
        assert accepted["customer_id"]
        assert client.track("acct_42", "login")["duplicates"] == 1  # no id: its time is its key
        batch = [{"external_id": "acct_42", "name": "report_created", "id": "r-1"}]
        assert client.track_many(batch)["stored"] == 1  # the route lost an answer already
        client.update_customer("acct_42", annual_contract_value=3_600_000)
        (task,) = client.list_tasks()
        assert client.close_task(task["id"])["status"] == "closed"
        client.suppress("taro@customer.example")
        assert client.unsuppress("taro@customer.example") is False  # lifted by the lost try
    assert len(app.lost) == 7
    assert count(runtime, customers) == 1
    with runtime.engine.connect() as connection:
        names = connection.execute(select(usage_events.c.name).order_by(usage_events.c.id))
        assert list(names.scalars()) == ["login", "report_created", "tier_changed"]
    assert count(runtime, suppressions) == 0


def test_a_server_that_is_not_there_is_a_connection_error_after_the_retries() -> None:
    waits: list[float] = []
    client = StepmailClient(
        f"http://127.0.0.1:{free_port()}", API_KEY, sleep=waits.append, draw=lambda: 0.0
    )
    with client, pytest.raises(StepmailConnectionError):
        client.list_tasks()
    assert waits == [0.5, 1.0, 2.0]
