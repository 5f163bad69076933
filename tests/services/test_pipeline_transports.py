"""The signup-to-inbox path through each real transport, and what a hostile name can do."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.sendgrid import SendGridTransport
from orchestrator.transports.smtp import SmtpTransport
from tests.fakes.sendgrid_server import DEFAULT_API_KEY, FakeSendGrid
from tests.fakes.smtp_server import RecordingHandler, start_server
from tests.support.clicks import untracked
from tests.support.delivery import run_due
from tests.support.signups import outbox_files, post_signup, signup_payload

HIGH: dict[str, Any] = {
    "annual_contract_value": 5_000_000,
    "csm_name": "Hanako Sato",
    "csm_email": "hanako@acme.example",
    "locale": "en",
    "name": "Jane Doe",
}


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


def test_the_welcome_mail_goes_out_through_a_real_smtp_server(
    client: TestClient, runtime: Runtime
) -> None:
    handler = RecordingHandler()
    controller = start_server(handler)
    runtime.transport = SmtpTransport("127.0.0.1", controller.port, timeout=5)
    try:
        post_signup(client, signup_payload(**HIGH))
        assert run_due(runtime) == ["sent"]
    finally:
        runtime.transport.close()
        controller.stop()

    [received] = handler.received
    assert received.rcpt_tos == ["cust-1@customer.example"]
    message = received.message
    assert "Hanako Sato" in str(message["From"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert "book-a-meeting" in untracked(str(html.get_content()), runtime.settings)


def test_the_welcome_mail_goes_out_through_sendgrid_with_a_valid_payload(
    client: TestClient, runtime: Runtime, fake_sendgrid: FakeSendGrid
) -> None:
    runtime.transport = SendGridTransport(DEFAULT_API_KEY, fake_sendgrid.url, timeout=5)
    post_signup(client, signup_payload(**HIGH))
    assert run_due(runtime) == ["sent"]
    runtime.transport.close()

    assert fake_sendgrid.invalid == []
    [accepted] = fake_sendgrid.accepted
    body = accepted.body
    assert body["reply_to"]["email"] == "hanako@acme.example"
    assert body["custom_args"]["stepmail_step"] == "welcome"
    assert body["custom_args"]["stepmail_tier"] == "high"
    assert all(isinstance(v, str) for v in body["custom_args"].values())
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    assert "book-a-meeting" in untracked(html, runtime.settings)  # through a click link


def test_a_customer_name_holding_html_is_escaped(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    post_signup(client, signup_payload(name='<script>alert("x")</script>', locale="en"))
    assert run_due(runtime) == ["sent"]

    [path] = outbox_files(settings)
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_line_break_in_a_name_cannot_inject_a_header(tmp_path: object) -> None:
    mail = OutgoingMail(
        idempotency_key="k",
        sender=Mailbox("onboarding@acme.example", "Acme\r\nBcc: spy@evil.example"),
        to=Mailbox("jane@example.com", "Jane\nX-Injected: yes"),
        subject="Hello\r\nBcc: spy@evil.example",
        html="<p>x</p>",
        text="x",
    )
    raw = mail.as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert parsed["Subject"] == "Hello Bcc: spy@evil.example"
