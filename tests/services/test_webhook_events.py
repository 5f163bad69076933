"""Each of the ten events reaches a subscriber from the code path that makes the fact: sends,
provider events, the unsubscribe link, goals and exit events, CSM tasks, the health job and a
tier move. What each one's ``data`` says is the README's table; no address is ever in it."""

from __future__ import annotations

import email
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, scheduled_sends
from orchestrator.provider_events.record import record_events
from orchestrator.provider_events.vocabulary import EventKind, NormalizedEvent
from orchestrator.runtime import Runtime
from orchestrator.services.health import run_daily_now
from orchestrator.services.webhooks import add_endpoint, deliver_due
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import FixedDraw, make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, post_events
from tests.support.webhook_receiver import webhook_receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def provider_event(send_id: int, address: str, kind: EventKind, n: int, at: Any) -> NormalizedEvent:
    return NormalizedEvent(
        provider="sendgrid",
        event_id=f"ev-{n}",
        content_hash=f"h{n}",
        event_type=kind.value,
        kind=kind,
        email=address,
        occurred_at=at,
        send_id=send_id,
        detail="550 no such user" if kind == EventKind.BOUNCED else "",
    )


def test_every_event_reaches_a_subscriber(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    with webhook_receiver() as receiver:
        add_endpoint(
            runtime.engine,
            receiver.url,
            ["*"],
            rules=runtime.outgoing_webhook_rules(),
            clock=clock,
        )
        for name in ("won", "lost", "quits"):
            assert post_signup(client, signup_payload(name)).status_code == 202
        assert set(run_due(runtime)) == {"sent"}

        with runtime.engine.connect() as connection:
            rows = connection.execute(
                select(scheduled_sends.c.id, customers.c.email)
                .join(customers, customers.c.id == scheduled_sends.c.customer_id)
                .where(scheduled_sends.c.state == "sent")
                .order_by(scheduled_sends.c.id)
            ).all()
        sent = [row.id for row in rows]
        address = {row.id: row.email for row in rows}
        with Session(runtime.engine) as session, session.begin():
            record_events(
                session,
                [
                    provider_event(sent[0], address[sent[0]], EventKind.DELIVERED, 1, clock.now()),
                    provider_event(sent[1], address[sent[1]], EventKind.BOUNCED, 2, clock.now()),
                ],
                soft_bounce_limit=3,
                now=clock.now(),
            )

        post_events(client, {"external_id": "won", "name": "subscription_upgraded"})
        post_events(client, {"external_id": "lost", "name": "subscription_cancelled"})
        header = email.message_from_bytes(outbox_files(runtime.settings)[-1].read_bytes())[
            "List-Unsubscribe"
        ]
        link = re.match(r"<https://[^/]+(/[^>]+)>", header)
        assert link is not None
        assert client.post(link[1], content=b"List-Unsubscribe=One-Click").status_code == 200

        moved = client.patch(
            "/v1/customers/quits", json={"annual_contract_value": 3_600_000}, headers=AUTH
        )
        assert moved.status_code == 200, moved.text
        task_id = client.get("/v1/tasks", headers=AUTH).json()["items"][0]["id"]
        assert client.post(f"/v1/tasks/{task_id}/close", headers=AUTH).status_code == 200
        post_events(client, {"external_id": "quits", "name": "login"})  # scored: a first band
        clock.advance(timedelta(days=1))
        run_daily_now(runtime.engine, rules=runtime.usage_rules(), clock=clock, notify=lambda _: 0)

        with httpx.Client(trust_env=False) as http, ThreadPoolExecutor(2) as pool:
            while deliver_due(
                runtime.engine,
                http,
                rules=runtime.outgoing_webhook_rules(),
                clock=clock,
                jitter=FixedDraw(),
                pool=pool,
            ):
                pass

        events = [json.loads(body) for body in receiver.bodies()]
        by_type: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_type.setdefault(event["type"], []).append(event["data"])
        assert set(by_type) == {
            "mail.sent",
            "mail.delivered",
            "mail.bounced",
            "recipient.unsubscribed",
            "enrollment.converted",
            "enrollment.exited",
            "task.opened",
            "task.closed",
            "health.band_changed",
            "tier.changed",
        }, sorted(by_type)
        assert {d["customer_id"] for d in by_type["mail.sent"]} == {"won", "lost", "quits"}
        assert by_type["mail.bounced"][0]["send_id"] == sent[1]
        assert by_type["enrollment.converted"][0]["customer_id"] == "won"
        assert by_type["enrollment.exited"][0]["customer_id"] == "lost"
        assert by_type["tier.changed"] == [{"customer_id": "quits", "from": "low", "to": "high"}]
        assert by_type["task.closed"][0]["task_id"] == task_id
        assert "@" not in json.dumps(events)
