"""Outgoing webhooks on the real store: a fact writes its message in its own transaction, the
loop posts it signed to a loopback receiver, retries with backoff, keeps each endpoint's order,
gives up after the last attempt and replays on demand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import webhook_attempts, webhook_messages
from orchestrator.errors import InvalidInput, UnsafeWebhookUrl, WebhookNotFound
from orchestrator.runtime import Runtime
from orchestrator.services.webhooks import (
    OutgoingWebhookRules,
    add_endpoint,
    deliver_due,
    list_deliveries,
    list_endpoints,
    replay_message,
    set_endpoint_enabled,
)
from orchestrator.webhooks.outbox import emit
from tests.support.delivery import run_due
from tests.support.environment import FixedDraw
from tests.support.signups import post_signup, signup_payload
from tests.support.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def rules(runtime: Runtime, **overrides: object) -> OutgoingWebhookRules:
    base = runtime.outgoing_webhook_rules()
    values: dict[str, object] = {
        "allow_private": True,
        "timeout": 5.0,
        "max_attempts": base.max_attempts,
        "batch_size": base.batch_size,
    }
    values.update(overrides)
    return OutgoingWebhookRules(**values)  # type: ignore[arg-type]


def subscribe(runtime: Runtime, url: str, *events: str) -> dict[str, object]:
    return add_endpoint(
        runtime.engine, url, list(events) or ["*"], rules=rules(runtime), clock=runtime.clock
    )


def deliver(
    runtime: Runtime, http: httpx.Client, pool: ThreadPoolExecutor, **overrides: object
) -> int:
    return deliver_due(
        runtime.engine,
        http,
        rules=rules(runtime, **overrides),
        clock=runtime.clock,
        jitter=FixedDraw(),
        pool=pool,
    )


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature, computed here by hand from the scheme's text."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def states(runtime: Runtime) -> list[tuple[str, str, int]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(
                webhook_messages.c.event_type, webhook_messages.c.state, webhook_messages.c.attempts
            ).order_by(webhook_messages.c.id)
        ).all()
    return [(r.event_type, r.state, r.attempts) for r in rows]


def test_a_sent_mail_reaches_the_receiver_signed(
    client: TestClient,
    runtime: Runtime,
    receiver: Receiver,
    http: httpx.Client,
    pool: ThreadPoolExecutor,
) -> None:
    endpoint = subscribe(runtime, receiver.url, "mail.sent")
    post_signup(client, signup_payload("cust-7"))
    assert run_due(runtime) == ["sent"]
    assert states(runtime) == [("mail.sent", "pending", 0)]

    assert deliver(runtime, http, pool) == 1

    [got] = receiver.received
    event = json.loads(got.body)
    assert event["type"] == "mail.sent"
    assert event["data"]["customer_id"] == "cust-7"
    assert event["data"]["journey"] and event["data"]["step"]
    assert "@" not in got.body.decode()  # never the address
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["webhook-timestamp"] == str(int(runtime.clock.now().timestamp()))
    assert got.headers["webhook-signature"] == expected_signature(
        str(endpoint["secret"]), got.headers, got.body
    )
    assert states(runtime) == [("mail.sent", "delivered", 1)]
    assert deliver(runtime, http, pool) == 0


def test_nobody_subscribed_writes_nothing(
    client: TestClient, runtime: Runtime, receiver: Receiver
) -> None:
    subscribe(runtime, receiver.url, "task.opened")
    post_signup(client, signup_payload())
    assert run_due(runtime) == ["sent"]
    assert states(runtime) == []


def test_a_rolled_back_fact_sends_nothing(runtime: Runtime, receiver: Receiver) -> None:
    subscribe(runtime, receiver.url, "tier.changed")
    with runtime.engine.connect() as connection:
        transaction = connection.begin()
        assert emit(connection, "tier.changed", {"customer_id": "c"}, runtime.clock.now()) == 1
        transaction.rollback()
    assert states(runtime) == []


def test_a_failing_endpoint_is_retried_with_backoff_and_the_same_id(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with webhook_receiver(answers=[500, 503]) as receiver:
        subscribe(runtime, receiver.url, "tier.changed")
        with runtime.engine.begin() as connection:
            emit(connection, "tier.changed", {"customer_id": "c", "to": "high"}, clock.now())

        assert deliver(runtime, http, pool) == 1
        assert states(runtime) == [("tier.changed", "pending", 1)]
        assert deliver(runtime, http, pool) == 0  # not due before its backoff
        clock.advance(timedelta(seconds=4))
        assert deliver(runtime, http, pool) == 0
        clock.advance(timedelta(seconds=1))  # 5 s after the first failure
        assert deliver(runtime, http, pool) == 1
        assert states(runtime) == [("tier.changed", "pending", 2)]
        clock.advance(timedelta(seconds=9))
        assert deliver(runtime, http, pool) == 0
        clock.advance(timedelta(seconds=1))  # then 10 s
        assert deliver(runtime, http, pool) == 1

        assert states(runtime) == [("tier.changed", "delivered", 3)]
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
        [message] = list_deliveries(runtime.engine)
        assert [a["status_code"] for a in message["log"]] == [500, 503, 204]


def test_an_endpoint_gets_its_messages_in_order_even_across_failures(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        subscribe(runtime, receiver.url, "tier.changed")
        for n in range(3):
            with runtime.engine.begin() as connection:
                emit(connection, "tier.changed", {"customer_id": f"c{n}"}, clock.now())
        for _ in range(5):
            deliver(runtime, http, pool)
            clock.advance(timedelta(seconds=6))

        order = [json.loads(body)["data"]["customer_id"] for body in receiver.bodies()]
        assert order == ["c0", "c0", "c1", "c2"]


def test_a_slow_endpoint_does_not_hold_another(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with webhook_receiver(answers=[500, 500, 500]) as failing, webhook_receiver() as healthy:
        subscribe(runtime, failing.url, "task.opened")
        subscribe(runtime, healthy.url, "task.opened")
        for n in range(2):
            with runtime.engine.begin() as connection:
                emit(connection, "task.opened", {"task_id": n}, clock.now())
        deliver(runtime, http, pool)
        deliver(runtime, http, pool)
        assert len(healthy.received) == 2
        assert len(failing.received) == 1


def test_the_last_attempt_fails_the_message_and_replay_sends_it_again(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with webhook_receiver(answers=[500, 500]) as receiver:
        subscribe(runtime, receiver.url, "task.closed")
        with runtime.engine.begin() as connection:
            emit(connection, "task.closed", {"task_id": 1}, clock.now())
        deliver(runtime, http, pool, max_attempts=2)
        clock.advance(timedelta(minutes=1))
        deliver(runtime, http, pool, max_attempts=2)
        assert states(runtime) == [("task.closed", "failed", 2)]
        clock.advance(timedelta(hours=2))
        assert deliver(runtime, http, pool, max_attempts=2) == 0

        [message] = list_deliveries(runtime.engine, state="failed")
        assert replay_message(runtime.engine, message["id"], clock=clock)["replayed"] is True
        assert deliver(runtime, http, pool, max_attempts=2) == 1
        assert states(runtime) == [("task.closed", "delivered", 1)]
        ids = {r.headers["webhook-id"] for r in receiver.received}
        assert len(receiver.received) == 3 and len(ids) == 1

    with pytest.raises(WebhookNotFound):
        replay_message(runtime.engine, 999, clock=clock)


def test_a_claim_left_by_a_dead_scheduler_is_taken_again_after_its_lease(
    runtime: Runtime,
    clock: FrozenClock,
    receiver: Receiver,
    http: httpx.Client,
    pool: ThreadPoolExecutor,
) -> None:
    subscribe(runtime, receiver.url, "task.opened")
    with runtime.engine.begin() as connection:
        emit(connection, "task.opened", {"task_id": 1}, clock.now())
        lease = rules(runtime).lease
        connection.execute(
            update(webhook_messages).values(state="delivering", next_attempt_at=clock.now() + lease)
        )
    assert deliver(runtime, http, pool) == 0
    clock.advance(lease)
    assert deliver(runtime, http, pool) == 1
    assert states(runtime) == [("task.opened", "delivered", 1)]


def test_a_disabled_endpoint_gets_nothing_new(
    runtime: Runtime, receiver: Receiver, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    endpoint = subscribe(runtime, receiver.url, "task.opened")
    set_endpoint_enabled(runtime.engine, int(str(endpoint["id"])), False)
    with runtime.engine.begin() as connection:
        assert emit(connection, "task.opened", {"task_id": 1}, runtime.clock.now()) == 0
    assert list_endpoints(runtime.engine)[0]["enabled"] is False
    with pytest.raises(WebhookNotFound):
        set_endpoint_enabled(runtime.engine, 999, True)


def test_an_unreachable_endpoint_is_a_logged_failed_attempt(
    runtime: Runtime, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    subscribe(runtime, "http://127.0.0.1:9/nothing-listens", "task.opened")
    with runtime.engine.begin() as connection:
        emit(connection, "task.opened", {"task_id": 1}, runtime.clock.now())
    assert deliver(runtime, http, pool) == 1
    [message] = list_deliveries(runtime.engine)
    assert message["state"] == "pending"
    assert message["log"][0]["status_code"] is None
    assert "ConnectError" in message["log"][0]["error"]
    with runtime.engine.connect() as connection:
        assert connection.execute(select(webhook_attempts.c.id)).all()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://localhost/x",
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
        "https://exa mple.com/x",
        "https://example.com/\r\nX-Evil: 1",
        "https://example.com:99999/x",
        "https://" + "a" * 3000 + ".com/",
    ],
)
def test_inside_or_malformed_destinations_are_refused(runtime: Runtime, url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl, match=r"^url: "):
        add_endpoint(
            runtime.engine,
            url,
            ["*"],
            rules=rules(runtime, allow_private=False),
            clock=runtime.clock,
        )
    assert list_endpoints(runtime.engine) == []


def test_a_destination_refused_at_delivery_time_is_not_posted(
    runtime: Runtime, receiver: Receiver, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    subscribe(runtime, receiver.url, "task.opened")  # allowed when added...
    with runtime.engine.begin() as connection:
        emit(connection, "task.opened", {"task_id": 1}, runtime.clock.now())
    deliver(runtime, http, pool, allow_private=False)  # ...refused when delivered
    assert receiver.received == []
    [message] = list_deliveries(runtime.engine)
    assert "loopback, private" in message["log"][0]["error"]


def test_unknown_events_are_refused_by_name(runtime: Runtime, receiver: Receiver) -> None:
    with pytest.raises(InvalidInput, match=r"events: unknown event 'mail\.opened'"):
        subscribe(runtime, receiver.url, "mail.sent,mail.opened")
    with pytest.raises(InvalidInput, match="events: name at least one"):
        subscribe(runtime, receiver.url, " , ")


def test_pruning_forgets_old_delivered_messages_and_never_waiting_ones(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    from orchestrator.services.webhooks import prune_delivered

    with webhook_receiver(answers=[204, 500]) as receiver:
        subscribe(runtime, receiver.url, "task.opened")
        for n in range(3):
            with runtime.engine.begin() as connection:
                emit(connection, "task.opened", {"task_id": n}, clock.now())
        deliver(runtime, http, pool, max_attempts=1)  # the first is delivered
        deliver(runtime, http, pool, max_attempts=1)  # the second fails for good
    assert [state for _, state, _ in states(runtime)] == ["delivered", "failed", "pending"]
    clock.advance(timedelta(days=31))
    before = clock.now() - timedelta(days=30)

    assert prune_delivered(runtime.engine, before) == 1
    assert [state for _, state, _ in states(runtime)] == ["failed", "pending"]
    assert prune_delivered(runtime.engine, before, include_failed=True) == 1
    assert [state for _, state, _ in states(runtime)] == ["pending"]
    with runtime.engine.connect() as connection:
        assert connection.execute(select(webhook_attempts.c.id)).all() == []
    assert prune_delivered(runtime.engine, clock.now() + timedelta(days=1)) == 0


def test_a_slow_endpoint_holds_only_its_own_queue(
    runtime: Runtime, clock: FrozenClock, http: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    """The loop claims again while a POST is in flight: the fast endpoint's three messages go
    out, one after the other, while the slow endpoint's first is still unanswered."""
    from orchestrator.services.webhooks import start_due

    hold = threading.Event()
    with webhook_receiver(hold=hold) as slow, webhook_receiver() as fast:
        subscribe(runtime, slow.url, "task.opened")
        subscribe(runtime, fast.url, "task.opened")
        for n in range(3):
            with runtime.engine.begin() as connection:
                emit(connection, "task.opened", {"task_id": n}, clock.now())
        started = dict(rules=rules(runtime), clock=clock, jitter=FixedDraw(), pool=pool)
        first = start_due(runtime.engine, http, limit=4, **started)  # type: ignore[arg-type]
        assert len(first) == 2  # one head per endpoint
        in_flight = set(first)
        for _ in range(50):
            done = {f for f in in_flight if f.done()}
            in_flight -= done
            in_flight.update(start_due(runtime.engine, http, limit=4, **started))  # type: ignore[arg-type]
            if len(fast.received) == 3:
                break
            wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
        assert len(fast.received) == 3
        assert [json.loads(b)["data"]["task_id"] for b in fast.bodies()] == [0, 1, 2]
        assert len(slow.received) == 1 and not all(f.done() for f in in_flight)
        hold.set()
        wait(in_flight)
