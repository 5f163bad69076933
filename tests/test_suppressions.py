"""The suppression list: a bounce, a spam report or a one-click unsubscribe stops every later
mail to the address in every journey; operators edit the list through the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.api.app import create_app
from orchestrator.cli import app as cli_app
from orchestrator.clock import FrozenClock
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import customers, scheduled_sends
from orchestrator.runtime import Runtime, build_runtime
from tests.conftest import post_signup, run_due, signup_payload
from tests.fakes.sendgrid_events import EventSigner, sendgrid_event
from tests.fakes.sendgrid_server import FakeSendGrid, ReceivedMail
from tests.sendgrid_helpers import (
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


# -- the API -----------------------------------------------------------------------------------


def test_the_api_needs_the_bearer_key(sg_client: TestClient) -> None:
    assert sg_client.get("/v1/suppressions").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        sg_client.post("/v1/suppressions", json={"email": "a@b.example"}, headers=wrong).status_code
        == 401
    )
    assert sg_client.delete("/v1/suppressions/a@b.example").status_code == 401


def test_add_list_and_remove_through_the_api(sg_client: TestClient) -> None:
    created = sg_client.post(
        "/v1/suppressions",
        json={"email": "Taro@Example.JP", "reason": "legal", "source": "ticket 42"},
        headers=AUTH,
    )
    assert created.status_code == 201
    assert created.json()["email"] == "taro@example.jp"
    again = sg_client.post("/v1/suppressions", json={"email": "taro@example.jp"}, headers=AUTH)
    assert (again.status_code, again.json()["reason"]) == (200, "legal")
    sg_client.post("/v1/suppressions", json={"email": "b@example.jp"}, headers=AUTH)

    listed = sg_client.get("/v1/suppressions", headers=AUTH).json()
    assert {e["email"] for e in listed} == {"taro@example.jp", "b@example.jp"}
    only_legal = sg_client.get("/v1/suppressions", params={"reason": "legal"}, headers=AUTH)
    assert [e["source"] for e in only_legal.json()] == ["ticket 42"]

    assert sg_client.delete("/v1/suppressions/TARO@example.jp", headers=AUTH).status_code == 204
    assert sg_client.delete("/v1/suppressions/taro@example.jp", headers=AUTH).status_code == 404
    assert [e["email"] for e in sg_client.get("/v1/suppressions", headers=AUTH).json()] == [
        "b@example.jp"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "not-an-address"}, "email"), ({"email": "a@b.example", "reason": ""}, "reason")],
)
def test_a_bad_field_is_a_422_naming_it(
    sg_client: TestClient, body: dict[str, str], field: str
) -> None:
    response = sg_client.post("/v1/suppressions", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


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


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    return {"STEPMAIL_DATABASE_URL": url}


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["suppressions", *args], env=env)
    return result.exit_code, result.output


def test_the_cli_adds_lists_and_removes(cli_env: dict[str, str]) -> None:
    assert cli(cli_env, "list") == (0, "no suppressed addresses\n")
    assert cli(cli_env, "add", "Jane@Example.com", "--reason", "legal") == (
        0,
        "suppressed jane@example.com (legal)\n",
    )
    assert cli(cli_env, "add", "jane@example.com") == (
        0,
        "jane@example.com was already suppressed (legal)\n",
    )
    code, output = cli(cli_env, "list")
    assert code == 0
    assert output.startswith("jane@example.com\tlegal\tcli\t")
    assert cli(cli_env, "remove", "jane@example.com") == (0, "removed jane@example.com\n")


def test_the_cli_names_what_is_wrong(cli_env: dict[str, str]) -> None:
    code, output = cli(cli_env, "add", "not-an-address")
    assert code == 1
    assert "EMAIL: not a valid address: 'not-an-address'" in output
    code, output = cli(cli_env, "remove", "nobody@example.com")
    assert code == 1
    assert "nobody@example.com is not suppressed" in output
