"""``POST /hooks/sendgrid``: signature checks, idempotent batches, and what each event does to
the send it names and to the suppression list."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import provider_events, soft_bounce_tallies, suppressions
from orchestrator.runtime import Runtime, build_runtime
from tests.fakes.sendgrid_events import SIGNATURE, TIMESTAMP, EventSigner, sendgrid_event
from tests.fakes.sendgrid_server import FakeSendGrid, ReceivedMail
from tests.support.delivery import run_due
from tests.support.sendgrid import (
    fake_sendgrid,
    post_events,
    send_row,
    sendgrid_settings,
    sg_client,
    sg_runtime,
    sg_settings,
    signer,
)
from tests.support.signups import post_signup, signup_payload

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

EMAIL = "cust-1@customer.example"


@pytest.fixture
def welcome(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid
) -> ReceivedMail:
    """The day-0 mail, sent through the fake: the mail events are about."""
    post_signup(sg_client, signup_payload())
    assert run_due(sg_runtime) == ["sent"]
    [mail] = fake_sendgrid.accepted
    return mail


def stored_events(runtime: Runtime) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(provider_events).order_by(provider_events.c.id)))


def suppression_of(runtime: Runtime, email: str = EMAIL) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(select(suppressions).where(suppressions.c.email == email)).first()


def post(client: TestClient, signer: EventSigner, clock: FrozenClock, *events: Any) -> Any:
    response = post_events(client, signer, clock, list(events))
    assert response.status_code == 200, response.text
    return response.json()


# -- who may post ------------------------------------------------------------------------------


def test_a_signed_batch_is_accepted(
    sg_client: TestClient, signer: EventSigner, clock: FrozenClock, welcome: ReceivedMail
) -> None:
    answer = post(sg_client, signer, clock, sendgrid_event(welcome, "processed"))
    assert answer == {"received": 1, "recorded": 1, "duplicates": 0}


def test_a_bad_signature_is_refused_and_nothing_is_stored(
    sg_client: TestClient, sg_runtime: Runtime, clock: FrozenClock, welcome: ReceivedMail
) -> None:
    impostor = EventSigner()  # a key SendGrid does not have
    response = post_events(sg_client, impostor, clock, [sendgrid_event(welcome, "bounce")])
    assert response.status_code == 401
    assert response.json()["detail"] == "signature does not match"
    assert stored_events(sg_runtime) == []
    assert suppression_of(sg_runtime) is None


def test_a_tampered_body_is_refused(
    sg_client: TestClient, signer: EventSigner, clock: FrozenClock
) -> None:
    stamp = int(clock.now().timestamp())
    headers = signer.headers(b'[{"event": "open"}]', stamp)
    response = sg_client.post("/hooks/sendgrid", content=b'[{"event": "bounce"}]', headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("age", [timedelta(minutes=11), timedelta(minutes=-11)])
def test_a_stale_or_future_timestamp_is_refused(
    sg_client: TestClient, signer: EventSigner, clock: FrozenClock, age: timedelta
) -> None:
    stamp = int((clock.now() - age).timestamp())
    response = post_events(sg_client, signer, clock, [{"event": "open"}], timestamp=stamp)
    assert response.status_code == 401
    assert "outside the allowed window" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing"),
        ({TIMESTAMP: "yesterday", SIGNATURE: "c2ln"}, "unix seconds"),
        ({SIGNATURE: "***"}, "not base64"),
    ],
)
def test_missing_or_malformed_headers_are_refused(
    sg_client: TestClient,
    signer: EventSigner,
    clock: FrozenClock,
    headers: dict[str, str],
    detail: str,
) -> None:
    body = b"[]"
    sent = {**signer.headers(body, int(clock.now().timestamp())), **headers}
    if not headers:
        sent = {"Content-Type": "application/json"}
    response = sg_client.post("/hooks/sendgrid", content=body, headers=sent)
    assert response.status_code == 401
    assert detail in response.json()["detail"]


@pytest.mark.parametrize("key", [None, "", "bm90IGEga2V5"])
def test_without_a_usable_public_key_every_batch_is_refused(
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
    key: str | None,
) -> None:
    response = post_open_with_key(key, tmp_path, database_url, fake_sendgrid, signer, clock)
    assert response.status_code == 503
    assert "STEPMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["detail"]


def test_a_key_in_pem_form_works_too(
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> None:
    der = signer.public_key  # base64 DER, as SendGrid shows it; the same key wrapped as PEM:
    pem = "-----BEGIN PUBLIC KEY-----\n" + der + "\n-----END PUBLIC KEY-----\n"
    response = post_open_with_key(pem, tmp_path, database_url, fake_sendgrid, signer, clock)
    assert response.status_code == 200


def test_a_body_that_is_not_an_array_of_events_is_a_400_naming_the_item(
    sg_client: TestClient, signer: EventSigner, clock: FrozenClock
) -> None:
    response = post_events(sg_client, signer, clock, [{"event": "open"}, "x"])  # type: ignore[list-item]
    assert response.status_code == 400
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", 1]
    assert error["msg"] == "body[1] must be an object"


# -- idempotency -------------------------------------------------------------------------------


def test_a_duplicate_batch_counts_once(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    batch = [sendgrid_event(welcome, "open"), sendgrid_event(welcome, "click", url="https://x")]
    first = post(sg_client, signer, clock, *batch)
    again = post(sg_client, signer, clock, *batch)
    renamed = [{**event, "sg_event_id": f"retry-{i}"} for i, event in enumerate(batch)]
    third = post(sg_client, signer, clock, *renamed)  # a retry under new ids: same content

    assert first == {"received": 2, "recorded": 2, "duplicates": 0}
    assert again == third == {"received": 2, "recorded": 0, "duplicates": 2}
    row = send_row(sg_runtime, "welcome")
    assert (row.open_count, row.click_count) == (1, 1)
    assert len(stored_events(sg_runtime)) == 2


def test_a_duplicate_inside_one_batch_counts_once(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    opened = sendgrid_event(welcome, "open")
    answer = post(sg_client, signer, clock, opened, opened, {**opened, "sg_event_id": "other"})
    assert answer == {"received": 3, "recorded": 1, "duplicates": 2}
    assert send_row(sg_runtime, "welcome").open_count == 1


# -- what events do to the send ----------------------------------------------------------------


def test_delivery_status_moves_forward_only(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    delivered_at = int(clock.now().timestamp()) + 5
    post(sg_client, signer, clock, sendgrid_event(welcome, "delivered", timestamp=delivered_at))
    post(sg_client, signer, clock, sendgrid_event(welcome, "processed", timestamp=delivered_at - 3))
    opens = [sendgrid_event(welcome, "open", timestamp=delivered_at + i) for i in (60, 90)]
    post(sg_client, signer, clock, *opens)

    row = send_row(sg_runtime, "welcome")
    assert row.delivery_status == "delivered"
    assert row.delivered_at.timestamp() == delivered_at
    assert row.open_count == 2
    assert row.state == "sent"


def test_events_without_our_custom_args_join_on_the_message_id(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    event = sendgrid_event(welcome, "delivered")
    del event["stepmail_send_id"]
    post(sg_client, signer, clock, event)

    row = send_row(sg_runtime, "welcome")
    assert row.delivery_status == "delivered"
    assert stored_events(sg_runtime)[0].scheduled_send_id == row.id


def test_a_send_id_naming_another_address_is_not_trusted(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    stranger = sendgrid_event(welcome, "open", email="someone@else.example", sg_message_id="zz.1")
    post(sg_client, signer, clock, stranger)
    assert send_row(sg_runtime, "welcome").open_count == 0
    assert stored_events(sg_runtime)[0].scheduled_send_id is None


def test_an_unknown_event_type_is_stored_not_refused(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    answer = post(sg_client, signer, clock, sendgrid_event(welcome, "machine_opened"))
    assert answer["recorded"] == 1
    [stored] = stored_events(sg_runtime)
    assert stored.event_type == "machine_opened"
    assert stored.payload["event"] == "machine_opened"
    assert send_row(sg_runtime, "welcome").delivery_status is None


# -- what events do to the suppression list ----------------------------------------------------


@pytest.mark.parametrize(
    ("event", "fields", "reason"),
    [
        ("bounce", {"type": "bounce", "status": "5.1.1", "reason": "550 no such user"}, "bounce"),
        ("spamreport", {}, "spam-report"),
        ("unsubscribe", {}, "unsubscribe"),
        ("group_unsubscribe", {"asm_group_id": 7}, "unsubscribe"),
        ("dropped", {"reason": "Bounced Address"}, "bounce"),
    ],
)
def test_events_that_suppress_the_address(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
    event: str,
    fields: dict[str, Any],
    reason: str,
) -> None:
    post(sg_client, signer, clock, sendgrid_event(welcome, event, **fields))
    entry = suppression_of(sg_runtime)
    assert entry is not None and entry.reason == reason
    assert entry.source.startswith(f"sendgrid {event}")


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ("deferred", {"response": "421 try later", "attempt": "1"}),
        ("bounce", {"type": "blocked", "status": "5.7.1", "reason": "blocked"}),
        ("bounce", {"type": "bounce", "status": "4.2.2", "reason": "mailbox full"}),
        ("dropped", {"reason": "Spam Content (if Spam Checker app is enabled)"}),
    ],
)
def test_events_that_do_not_suppress_at_once(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
    event: str,
    fields: dict[str, Any],
) -> None:
    post(sg_client, signer, clock, sendgrid_event(welcome, event, **fields))
    assert suppression_of(sg_runtime) is None


def test_soft_bounces_suppress_after_the_configured_count(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    limit = sg_runtime.settings.soft_bounce_limit
    blocked = {"type": "blocked", "status": "5.7.1", "reason": "blocked"}
    for i in range(limit - 1):  # one mail blocked again and again (distinct times)
        post(sg_client, signer, clock, sendgrid_event(welcome, "bounce", timestamp=i, **blocked))
    deferred = sendgrid_event(welcome, "deferred", response="421 later")
    post(sg_client, signer, clock, deferred)
    assert suppression_of(sg_runtime) is None

    post(sg_client, signer, clock, sendgrid_event(welcome, "bounce", timestamp=limit, **blocked))
    entry = suppression_of(sg_runtime)
    assert entry is not None and entry.reason == "soft-bounce"
    with sg_runtime.engine.connect() as connection:
        count = connection.execute(select(soft_bounce_tallies.c.count)).scalar_one()
    assert count == limit
    assert send_row(sg_runtime, "welcome").delivery_status == "soft_bounced"


def test_a_resubscribe_lifts_an_unsubscribe_but_not_a_bounce(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    post(sg_client, signer, clock, sendgrid_event(welcome, "group_unsubscribe", asm_group_id=3))
    post(sg_client, signer, clock, sendgrid_event(welcome, "group_resubscribe", asm_group_id=3))
    assert suppression_of(sg_runtime) is None

    post(sg_client, signer, clock, sendgrid_event(welcome, "bounce", status="5.1.1"))
    post(sg_client, signer, clock, sendgrid_event(welcome, "group_resubscribe", asm_group_id=3))
    entry = suppression_of(sg_runtime)
    assert entry is not None and entry.reason == "bounce"


def test_a_batch_of_many_events_is_stored_in_one_go(
    sg_client: TestClient,
    sg_runtime: Runtime,
    signer: EventSigner,
    clock: FrozenClock,
    welcome: ReceivedMail,
) -> None:
    batch = [sendgrid_event(welcome, "open", useragent=f"ua-{i}") for i in range(1200)]
    answer = post(sg_client, signer, clock, *batch)
    assert answer == {"received": 1200, "recorded": 1200, "duplicates": 0}
    assert send_row(sg_runtime, "welcome").open_count == 1200
    with sg_runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(provider_events)).scalar() == (
            1200
        )


def post_open_with_key(
    key: str | None,
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> Any:
    """One signed ``open`` event to an installation configured with ``key``."""
    settings = sendgrid_settings(
        tmp_path, database_url, fake_sendgrid, signer, sendgrid_webhook_public_key=key
    )
    runtime = build_runtime(settings, clock=clock)
    with TestClient(create_app(runtime)) as client:
        response = post_events(client, signer, clock, [{"event": "open"}])
    runtime.close()
    return response
