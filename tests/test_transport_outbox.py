"""The outbox transport: one ``.eml`` per idempotency key, readable by any mail parser."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from orchestrator.mail import Mailbox, OutgoingMail
from orchestrator.settings import Settings
from orchestrator.transports import make_transport
from orchestrator.transports.outbox import OutboxTransport


def make_mail(key: str = "enr-1:welcome") -> OutgoingMail:
    return OutgoingMail(
        idempotency_key=key,
        sender=Mailbox("onboarding@example.com", "Acme"),
        to=Mailbox("taro@example.jp", "山田 太郎"),
        subject="ようこそ",
        html="<p>こんにちは</p>",
        text="こんにちは",
        reply_to=Mailbox("csm@example.com", "CSM"),
        headers={"List-Unsubscribe": "<https://x/unsubscribe/t>"},
    )


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_each_idempotency_key_becomes_one_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    outbox.send(make_mail("enr-1:welcome"))
    outbox.send(make_mail("enr-2:welcome"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enr-1_welcome.eml", "enr-2_welcome.eml"]


def test_sending_the_same_key_twice_keeps_one_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    first = outbox.send(make_mail())
    second = outbox.send(make_mail())
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["enr-1_welcome.eml"]  # no temp files left


def test_the_file_parses_with_both_parts(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    result = outbox.send(make_mail())
    assert result.provider_message_id is not None
    message = read_eml(tmp_path / result.provider_message_id)
    assert message["Subject"] == "ようこそ"
    assert message["Message-ID"] == "<enr-1.welcome@stepmail.local>"
    assert message.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content().strip()) for p in message.iter_parts()]
    assert parts == [("text/plain", "こんにちは"), ("text/html", "<p>こんにちは</p>")]


def test_make_transport_builds_the_outbox_by_default(tmp_path: Path) -> None:
    settings = Settings(outbox_dir=tmp_path / "outbox", _env_file=None)
    transport = make_transport(settings)
    assert isinstance(transport, OutboxTransport)
    assert transport.directory == tmp_path / "outbox"
    assert transport.idempotent is True
