"""The suppression list: a bounce, a spam report or a one-click unsubscribe stops every later
mail to the address in every journey; lifting it lets them go again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, scheduled_sends
from orchestrator.runtime import Runtime, build_runtime
from tests.fakes.sendgrid_events import EventSigner, sendgrid_event
from tests.fakes.sendgrid_server import FakeSendGrid, ReceivedMail
from tests.support.delivery import run_due
from tests.support.sendgrid import (
    API_KEY,
    fake_sendgrid,
    post_events,
    sendgrid_settings,
    sg_client,
    sg_runtime,
    sg_settings,
    signer,
    write_journeys,
)
from tests.support.signups import post_signup, signup_payload

__all__ = ["fake_sendgrid", "sg_client", "sg_runtime", "sg_settings", "signer"]

AUTH = {"Authorization": f"Bearer {API_KEY}"}
VICTIM = "cust-1@customer.example"


# -- every journey stops ---------------------------------------------------------------------


@pytest.fixture
def two_journeys(
    tmp_path: Path,
    database_url: str,
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
) -> Iterator[tuple[Runtime, TestClient]]:
    journeys = write_journeys(tmp_path / "two", "onboarding", "trial")
    settings = sendgrid_settings(
        tmp_path, database_url, fake_sendgrid, signer, journeys_dir=journeys
    )
    runtime = build_runtime(settings, clock=clock)
    with TestClient(create_app(runtime)) as client:
        yield runtime, client
    runtime.close()


def stop_by_bounce(client: TestClient, signer: EventSigner, clock: Any, mail: ReceivedMail) -> None:
    event = sendgrid_event(mail, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 gone")
    assert post_events(client, signer, clock, [event]).status_code == 200


def stop_by_spam_report(
    client: TestClient, signer: EventSigner, clock: Any, mail: ReceivedMail
) -> None:
    assert (
        post_events(client, signer, clock, [sendgrid_event(mail, "spamreport")]).status_code == 200
    )


def stop_by_one_click(
    client: TestClient, signer: EventSigner, clock: Any, mail: ReceivedMail
) -> None:
    """What Gmail does with ``List-Unsubscribe-Post``: a bare POST to the header's URL."""
    header = mail.body["headers"]["List-Unsubscribe"]
    url = re.search(r"<(https://[^>]+)>", header)
    assert url is not None
    path = url.group(1).removeprefix("https://stepmail.example.com")
    response = client.post(path, content=b"List-Unsubscribe=One-Click")
    assert response.status_code == 200


STOPPERS = {
    "bounce": stop_by_bounce,
    "spamreport": stop_by_spam_report,
    "one-click": stop_by_one_click,
}
REASONS = {"bounce": "bounce", "spamreport": "spam-report", "one-click": "unsubscribe"}


@pytest.mark.parametrize("stopper", list(STOPPERS))
def test_one_stop_signal_ends_every_later_mail_in_every_journey(
    two_journeys: tuple[Runtime, TestClient],
    fake_sendgrid: FakeSendGrid,
    signer: EventSigner,
    clock: FrozenClock,
    stopper: str,
) -> None:
    runtime, client = two_journeys
    post_signup(client, signup_payload())
    post_signup(client, signup_payload("other"))  # a different address keeps its mails
    assert run_due(runtime) == ["sent"] * 4  # both welcomes, to both customers
    mail = next(
        m for m in fake_sendgrid.accepted
        if m.body["personalizations"][0]["to"][0]["email"] == VICTIM
        and m.body["custom_args"]["stepmail_journey"] == "trial"
    )  # fmt: skip

    STOPPERS[stopper](client, signer, clock, mail)
    for _ in range(3):
        clock.advance(timedelta(days=1))
        run_due(runtime)

    to_victim = [m for m in fake_sendgrid.accepted if VICTIM in str(m.body["personalizations"])]
    assert len(to_victim) == 2  # the two day-0 welcomes, nothing after
    later = rows_of(runtime, VICTIM, exclude_step="welcome")
    assert {(r.journey_id, r.step_id) for r in later} == {
        ("onboarding", "basics"),
        ("onboarding", "faq"),
        ("trial", "tips"),
    }
    assert {(r.state, r.reason) for r in later} == {
        ("skipped", f"address suppressed ({REASONS[stopper]})")
    }
    assert {r.state for r in rows_of(runtime, "other@customer.example")} == {"sent"}


def rows_of(runtime: Runtime, email: str, exclude_step: str | None = None) -> list[Any]:
    query = (
        select(scheduled_sends)
        .join(customers, customers.c.id == scheduled_sends.c.customer_id)
        .where(customers.c.email == email)
    )
    if exclude_step is not None:
        query = query.where(scheduled_sends.c.step_id != exclude_step)
    with runtime.engine.connect() as connection:
        return list(connection.execute(query))


def test_a_lifted_suppression_lets_later_mails_go_out(
    sg_client: TestClient, sg_runtime: Runtime, fake_sendgrid: FakeSendGrid, clock: FrozenClock
) -> None:
    sg_client.post("/v1/suppressions", json={"email": VICTIM}, headers=AUTH)
    post_signup(sg_client, signup_payload())
    assert run_due(sg_runtime) == ["skipped"]

    sg_client.delete(f"/v1/suppressions/{VICTIM}", headers=AUTH)
    clock.advance(timedelta(days=1))
    assert run_due(sg_runtime) == ["sent"]
    assert len(fake_sendgrid.accepted) == 1
