"""The SMTP transport against a real local SMTP server (aiosmtpd) on an ephemeral port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiosmtpd.controller import Controller

from orchestrator.errors import (
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.settings import Settings
from orchestrator.transports.factory import make_transport
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import RecordingHandler, start_server

TIMEOUT = 2.0


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, Controller]]:
    handler = RecordingHandler()
    controller = start_server(handler)
    yield handler, controller
    controller.stop()


@pytest.fixture
def transport(smtp_server: tuple[RecordingHandler, Controller]) -> Iterator[SmtpTransport]:
    _, controller = smtp_server
    smtp = SmtpTransport("127.0.0.1", controller.port, timeout=TIMEOUT)
    yield smtp
    smtp.close()


def make_mail(sender_name: str = "Acme", key: str = "enr-1:welcome") -> OutgoingMail:
    return OutgoingMail(
        idempotency_key=key,
        sender=Mailbox("onboarding@example.com", sender_name),
        to=Mailbox("taro@example.jp", "山田 太郎"),
        subject="ようこそ",
        html="<p>こんにちは</p>",
        text="こんにちは",
        reply_to=Mailbox("csm@example.com", "CSM"),
        headers={"List-Unsubscribe": "<https://x/unsubscribe/t>"},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_multipart_mail_is_delivered(
    smtp_server: tuple[RecordingHandler, Controller], transport: SmtpTransport
) -> None:
    handler, _ = smtp_server
    result = transport.send(make_mail())

    [received] = handler.received
    assert received.mail_from == "onboarding@example.com"
    assert received.rcpt_tos == ["taro@example.jp"]
    message = received.message
    assert result.provider_message_id == message["Message-ID"] == "<enr-1.welcome@stepmail.local>"
    assert message["Subject"] == "ようこそ"
    assert message["From"].addresses[0].display_name == "Acme"
    assert message["To"].addresses[0].display_name == "山田 太郎"
    assert message["Reply-To"].addresses[0].addr_spec == "csm@example.com"
    assert message["List-Unsubscribe"] == "<https://x/unsubscribe/t>"
    parts = [(p.get_content_type(), p.get_content().strip()) for p in message.iter_parts()]
    assert parts == [("text/plain", "こんにちは"), ("text/html", "<p>こんにちは</p>")]


def test_a_display_name_cannot_inject_a_header(
    smtp_server: tuple[RecordingHandler, Controller], transport: SmtpTransport
) -> None:
    handler, _ = smtp_server
    transport.send(make_mail(sender_name="Acme\r\nBcc: x@evil"))

    [received] = handler.received
    assert received.rcpt_tos == ["taro@example.jp"]
    assert received.message["Bcc"] is None
    assert received.message["From"].addresses[0].addr_spec == "onboarding@example.com"


def test_one_connection_serves_consecutive_sends(
    smtp_server: tuple[RecordingHandler, Controller], transport: SmtpTransport
) -> None:
    handler, _ = smtp_server
    transport.send(make_mail(key="enr-1:welcome"))
    transport.send(make_mail(key="enr-2:welcome"))

    first, second = handler.received
    assert first.peer == second.peer  # same client port: the connection was reused


def test_a_connection_the_server_dropped_is_replaced() -> None:
    handler = RecordingHandler()
    first = start_server(handler)
    smtp = SmtpTransport("127.0.0.1", first.port, timeout=TIMEOUT)
    try:
        smtp.send(make_mail(key="enr-1:welcome"))
        first.stop()  # closes the pooled connection from the server's side
        second = start_server(handler, port=first.port)
        try:
            smtp.send(make_mail(key="enr-2:welcome"))
        finally:
            second.stop()
    finally:
        smtp.close()
    assert len(handler.received) == 2
    assert handler.received[0].peer != handler.received[1].peer


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "error"),
    [
        ("451 4.3.0 Try again later", None, TransientDeliveryError),
        (None, "451 4.3.0 Try again later", TransientDeliveryError),
        ("550 5.1.1 No such user", None, PermanentDeliveryError),
        (None, "554 5.6.0 Message rejected", PermanentDeliveryError),
    ],
)
def test_smtp_replies_decide_the_error(
    smtp_server: tuple[RecordingHandler, Controller],
    transport: SmtpTransport,
    rcpt_reply: str | None,
    data_reply: str | None,
    error: type[Exception],
) -> None:
    handler, _ = smtp_server
    handler.rcpt_reply, handler.data_reply = rcpt_reply, data_reply
    with pytest.raises(error) as caught:
        transport.send(make_mail())
    assert (rcpt_reply or data_reply or "")[:3] in str(caught.value)
    assert type(caught.value) is error

    handler.rcpt_reply = handler.data_reply = None  # the same connection still works
    transport.send(make_mail())
    assert len(handler.received) == 1


def test_silence_after_data_is_an_unknown_outcome(
    smtp_server: tuple[RecordingHandler, Controller],
) -> None:
    handler, controller = smtp_server
    handler.data_delay = 1.0
    impatient = SmtpTransport("127.0.0.1", controller.port, timeout=0.3)
    try:
        with pytest.raises(UnknownDeliveryOutcome):
            impatient.send(make_mail())
    finally:
        impatient.close()


def test_connection_refused_is_transient() -> None:
    smtp = SmtpTransport("127.0.0.1", free_port(), timeout=TIMEOUT)
    with pytest.raises(TransientDeliveryError):
        smtp.send(make_mail())
    smtp.close()


def test_make_transport_builds_smtp() -> None:
    settings = Settings(
        mail_transport="smtp",
        smtp_host="mail.example.com",
        smtp_port=2525,
        smtp_password="secret",
        smtp_timeout=3.0,
        _env_file=None,
    )
    transport = make_transport(settings)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.timeout) == ("mail.example.com", 2525, 3.0)
    assert transport.idempotent is False


def test_threads_share_the_transport_safely(
    smtp_server: tuple[RecordingHandler, Controller], transport: SmtpTransport
) -> None:
    handler, _ = smtp_server
    keys = [f"enr-{i}:welcome" for i in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda key: transport.send(make_mail(key=key)), keys))

    ids = sorted(r.message["Message-ID"] for r in handler.received)
    assert ids == sorted(make_mail(key=key).message_id for key in keys)
    assert len({r.peer for r in handler.received}) <= 4  # pooled: at most one per thread
