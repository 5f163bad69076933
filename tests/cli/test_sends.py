"""``stepmail sends unknown|settle``: a person lists the sends whose outcome stayed unknown
and settles one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.unknown_sends import Settlement, settle_unknown
from orchestrator.errors import UnknownDeliveryOutcome
from orchestrator.runtime import Runtime
from tests.support.delivery import run_due
from tests.support.signups import post_signup, signup_payload
from tests.support.transports import ScriptedTransport, welcome_row


@pytest.fixture
def transport(client: TestClient, runtime: Runtime) -> ScriptedTransport:
    """The welcome mail's send ended unknown (an SMTP connection lost after DATA, say)."""
    scripted = ScriptedTransport(UnknownDeliveryOutcome("connection lost after DATA"))
    runtime.transport = scripted
    post_signup(client, signup_payload("lost"))
    assert run_due(runtime) == ["unknown"]
    return scripted


def settle(runtime: Runtime, settlement: Settlement, note: str = "") -> None:
    send_id = welcome_row(runtime).id
    with runtime.engine.begin() as connection:
        settle_unknown(connection, send_id, settlement, note, runtime.clock.now())


def test_the_cli_lists_and_settles(transport: ScriptedTransport, runtime: Runtime) -> None:
    env = {"STEPMAIL_DATABASE_URL": runtime.settings.database_url}
    send_id = welcome_row(runtime).id
    runner = CliRunner()

    listed = runner.invoke(app, ["sends", "unknown"], env=env)
    assert listed.exit_code == 0 and listed.output.startswith(f"{send_id}\tlost@customer.example")
    settled = runner.invoke(app, ["sends", "settle", str(send_id), "--as", "resend"], env=env)
    assert settled.exit_code == 0 and f"send {send_id} settled as resend" in settled.output
    again = runner.invoke(app, ["sends", "settle", str(send_id), "--as", "sent"], env=env)
    assert again.exit_code == 4 and "is pending, not unknown" in again.output
    assert "Traceback" not in again.output
    with runtime.engine.connect() as connection:
        state = connection.execute(
            select(scheduled_sends.c.state).where(scheduled_sends.c.id == send_id)
        ).scalar()
    assert state == "pending"
