"""The SendGrid transport against a local fake that validates every body with the OpenAPI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from orchestrator.errors import (
    ConfigurationError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.mail import Mailbox, OutgoingMail
from orchestrator.settings import Settings
from orchestrator.transports import make_transport
from orchestrator.transports.sendgrid import SendGridTransport, retry_after_seconds
from tests.fakes.sendgrid_server import DEFAULT_SPEC, FakeSendGrid, body_validator

CLIENT_TIMEOUT = 0.5
validate_body = body_validator(str(DEFAULT_SPEC))


def make_mail(**changes: object) -> OutgoingMail:
    mail = OutgoingMail(
        idempotency_key="enr-1:welcome",
        sender=Mailbox("onboarding@example.com", "Acme"),
        to=Mailbox("taro@example.jp", "山田 太郎"),
        subject="ようこそ",
        html="<p>こんにちは</p>",
        text="こんにちは",
        reply_to=Mailbox("csm@example.com", "CSM"),
        headers={
            "List-Unsubscribe": "<https://x/unsubscribe/t>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        metadata={"delivery_id": "1", "journey": "onboarding", "step": "welcome", "tier": "high"},
        categories=("onboarding", "welcome", "high"),
    )
    return replace(mail, **changes)  # type: ignore[arg-type]


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(hang_seconds=2.0) as server:
        yield server


@pytest.fixture
def transport(sendgrid: FakeSendGrid) -> Iterator[SendGridTransport]:
    client = SendGridTransport(sendgrid.api_key, sendgrid.url, timeout=CLIENT_TIMEOUT)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- what is sent ----------------------------------------------------------------------------


def test_a_mail_is_accepted_with_a_valid_payload(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    result = transport.send(make_mail())

    assert sendgrid.invalid == []
    [received] = sendgrid.accepted
    assert result.provider_message_id == received.message_id
    assert received.headers["authorization"] == f"Bearer {sendgrid.api_key}"
    body = received.body
    assert body["from"] == {"email": "onboarding@example.com", "name": "Acme"}
    assert body["personalizations"] == [{"to": [{"email": "taro@example.jp", "name": "山田 太郎"}]}]
    assert body["reply_to"] == {"email": "csm@example.com", "name": "CSM"}
    assert body["subject"] == "ようこそ"
    assert body["content"] == [
        {"type": "text/plain", "value": "こんにちは"},
        {"type": "text/html", "value": "<p>こんにちは</p>"},
    ]
    assert body["custom_args"] == {
        "delivery_id": "1",
        "journey": "onboarding",
        "step": "welcome",
        "tier": "high",
    }
    assert body["categories"] == ["onboarding", "welcome", "high"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["Message-ID"] == "<enr-1.welcome@stepmail.local>"
    assert "mail_settings" not in body


def test_sandbox_mode_is_requested_in_mail_settings(sendgrid: FakeSendGrid) -> None:
    sandboxed = SendGridTransport(sendgrid.api_key, sendgrid.url, sandbox_mode=True)
    try:
        sandboxed.send(make_mail())
    finally:
        sandboxed.close()
    assert sendgrid.invalid == []
    assert sendgrid.accepted[0].body["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_a_japanese_mail_builds_a_valid_payload(transport: SendGridTransport) -> None:
    mail = make_mail(
        subject="【重要】ご利用開始のご案内",
        text="山田様\n\nご登録ありがとうございます。",
        html="<p>山田様</p><p>ご登録ありがとうございます。</p>",
        sender=Mailbox("onboarding@example.com", "株式会社アクメ"),
    )
    payload = transport.build_payload(mail)
    assert validate_body(payload) == []
    assert payload["subject"] == "【重要】ご利用開始のご案内"
    assert payload["from"]["name"] == "株式会社アクメ"


def test_categories_are_deduplicated_trimmed_and_capped(transport: SendGridTransport) -> None:
    categories = ("a", "a", "x" * 300, *(f"c{i}" for i in range(12)))
    payload = transport.build_payload(make_mail(categories=categories))
    assert validate_body(payload) == []
    assert payload["categories"][:3] == ["a", "x" * 255, "c0"]
    assert len(payload["categories"]) == 10


def test_reserved_headers_are_left_to_their_own_fields(transport: SendGridTransport) -> None:
    mail = make_mail(headers={"Reply-To": "x@evil.example", "BCC": "y@evil", "X-Campaign": "7"})
    payload = transport.build_payload(mail)
    assert validate_body(payload) == []
    assert set(payload["headers"]) == {"Message-ID", "X-Campaign"}


def test_a_mail_without_reply_to_or_metadata_is_valid(transport: SendGridTransport) -> None:
    payload = transport.build_payload(make_mail(reply_to=None, metadata={}, categories=()))
    assert validate_body(payload) == []
    assert not {"reply_to", "custom_args", "categories"} & set(payload)


# -- how answers are classified ------------------------------------------------------------


def test_429_is_transient_with_retry_after(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    sendgrid.script(["429"])
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(make_mail())
    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0


def test_500_is_transient(sendgrid: FakeSendGrid, transport: SendGridTransport) -> None:
    sendgrid.script(["500", "ok"])
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(make_mail())
    assert caught.value.status == 500
    assert transport.send(make_mail()).provider_message_id  # the retry goes through
    assert len(sendgrid.accepted) == 1


def test_a_callable_script_picks_the_answer_per_mail(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    sendgrid.script(lambda body: "503" if body["subject"] == "busy" else "ok")
    with pytest.raises(TransientDeliveryError):
        transport.send(make_mail(subject="busy"))
    transport.send(make_mail())
    assert [m.body["subject"] for m in sendgrid.accepted] == ["ようこそ"]


def test_400_is_permanent_with_sendgrids_message(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    sendgrid.script(["400"])
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(make_mail())
    assert caught.value.status == 400
    assert "The from email does not contain a valid address." in str(caught.value)


def test_an_invalid_body_is_refused_by_the_fake(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(make_mail(sender=Mailbox("not-an-address", "Acme")))
    [rejected] = sendgrid.invalid
    assert rejected.errors[0]["field"] == "from.email"
    assert "from.email" in str(caught.value)
    assert sendgrid.accepted == []


def test_a_wrong_api_key_is_permanent(sendgrid: FakeSendGrid) -> None:
    wrong = SendGridTransport("SG.wrong", sendgrid.url, timeout=CLIENT_TIMEOUT)
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            wrong.send(make_mail())
    finally:
        wrong.close()
    assert caught.value.status == 401
    assert "SG.wrong" not in str(caught.value)


def test_no_answer_in_time_is_an_unknown_outcome(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    sendgrid.script(["hang"])
    with pytest.raises(UnknownDeliveryOutcome):
        transport.send(make_mail())
    assert len(sendgrid.accepted) == 1  # SendGrid did take it: resending would mail twice


def test_a_dropped_connection_is_an_unknown_outcome(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    sendgrid.script(["drop"])
    with pytest.raises(UnknownDeliveryOutcome):
        transport.send(make_mail())


def test_connection_refused_is_transient() -> None:
    transport = SendGridTransport("SG.key", f"http://127.0.0.1:{free_port()}", timeout=1.0)
    try:
        with pytest.raises(TransientDeliveryError):
            transport.send(make_mail())
    finally:
        transport.close()


def test_the_keep_alive_connection_is_reused(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    for _ in range(3):
        transport.send(make_mail())
    assert len(sendgrid.accepted) == 3
    assert sendgrid.connections == 1


# -- helpers and configuration ---------------------------------------------------------------


def test_retry_after_falls_back_to_the_rate_limit_reset() -> None:
    assert retry_after_seconds(httpx.Headers({"X-RateLimit-Reset": "1000"}), now=990.0) == 10.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"}), now=0.0) == 3.0
    date = httpx.Headers({"Retry-After": "Thu, 01 Jan 1970 00:00:30 GMT"})
    assert retry_after_seconds(date, now=10.0) == 20.0
    assert retry_after_seconds(httpx.Headers({}), now=0.0) is None


def test_the_api_key_is_not_in_the_repr(transport: SendGridTransport) -> None:
    assert "fake-test-key" not in repr(transport)


def test_make_transport_requires_the_api_key() -> None:
    settings = Settings(mail_transport="sendgrid", _env_file=None)
    with pytest.raises(ConfigurationError, match="STEPMAIL_SENDGRID_API_KEY"):
        make_transport(settings)


def test_make_transport_builds_sendgrid(sendgrid: FakeSendGrid) -> None:
    settings = Settings(
        mail_transport="sendgrid",
        sendgrid_api_key=sendgrid.api_key,
        sendgrid_api_host=sendgrid.url,
        _env_file=None,
    )
    transport = make_transport(settings)
    try:
        assert isinstance(transport, SendGridTransport)
        transport.send(make_mail())
    finally:
        transport.close()
    assert len(sendgrid.accepted) == 1
