"""Header injection, refused by the mail layer itself, on every transport.

Each header-bound value (the To, From and Reply-To names, the Subject, a header of our own)
gets each hostile form: RFC 2047 encoded-words carrying CR/LF (Q and B, one ending the header
block early), raw CR/LF, Unicode and other line breaks, NUL. The produced bytes (an outbox
``.eml`` file, and what a real SMTP server received) must carry exactly the expected headers,
the body untouched, and the value as the literal text it was: an encoded-word typed by a
user is text, never decoded. The stdlib ``email`` package decodes encoded-words and writes
their CR/LF back on Python before 3.11.10 (CVE-2024-6923); these run on any patch level.
"""

from __future__ import annotations

import base64
import email
import json
import re
from collections.abc import Callable, Iterator
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from orchestrator.errors import PermanentDeliveryError
from orchestrator.guards.mail_headers import encoded_words, single_line
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.outbox import OutboxTransport
from orchestrator.transports.sendgrid import SendGridTransport, json_body
from orchestrator.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import RecordingHandler, start_server

INJECTED = "x\r\nBcc: victim@evil.com\r\nX-Injected: 1"
HOSTILE = {
    "encoded-word q": "=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.com=0D=0AX-Injected=3A_1?=",
    "encoded-word q, blank line": "=?utf-8?q?x=0D=0A=0D=0AX-Injected=3A_1?=",
    "encoded-word b": f"=?utf-8?b?{base64.b64encode(INJECTED.encode()).decode()}?=",
    "encoded-word inside text": "Acme =?UTF-8?B?eA0KQmNjOiB2aWN0aW1AZXZpbC5jb20=?= Inc",
    "raw CR LF": INJECTED,
    "raw LF, blank line": "x\n\nX-Injected: 1",
    "raw CR": "x\rBcc: victim@evil.com",
    "U+2028 U+2029": "x\u2028Bcc: victim@evil.com\u2029X-Injected: 1",
    "NEL": "x\x85Bcc: victim@evil.com",
    "VT FF": "x\x0bBcc: victim@evil.com\x0cX-Injected: 1",
    "NUL": "x\x00Bcc: victim@evil.com",
    "lone surrogate": "x\ud800Bcc: victim@evil.com",
}
TEXT = "Hello,\nthe body stays as it was.\n"
HTML = "<p>Hello, the body stays as it was.</p>\n"
BASE_HEADERS = ["Subject", "From", "To", "Reply-To", "Message-ID", "List-Unsubscribe"]
MIME_HEADERS = ["MIME-Version", "Content-Type"]


def make_mail(field: str, value: str) -> OutgoingMail:
    names = {"to": "Taro", "from": "Acme", "reply_to": "Hanako"}
    subject, unsubscribe = "Welcome", "<https://stepmail.example/unsubscribe/t>"
    if field in names:
        names[field] = value
    elif field == "subject":
        subject = f"Welcome to Relay, {value}: let's plan your rollout"
    else:
        unsubscribe = f"<https://stepmail.example/unsubscribe/{value}>"
    return OutgoingMail(
        idempotency_key="stepmail-1-welcome",
        sender=Mailbox("onboarding@acme.example", names["from"]),
        to=Mailbox("taro@customer.example", names["to"]),
        reply_to=Mailbox("hanako@acme.example", names["reply_to"]),
        subject=subject,
        html=HTML,
        text=TEXT,
        headers={"List-Unsubscribe": unsubscribe},
    )


def raw_headers(data: bytes) -> Message:
    """The message with header values as written (compat32 decodes nothing)."""
    return email.message_from_bytes(data, policy=policy.compat32)


def decoded(value: str) -> str:
    """Unfolded, then RFC 2047-decoded as readers do (whitespace between encoded-words dropped)."""
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", value))))


def display_name(field_value: str) -> str:
    phrase = re.sub(r"\r?\n(?=[ \t])", "", field_value).rpartition("<")[0].strip()
    if phrase.startswith('"'):
        return phrase[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return decoded(phrase)


def assert_exactly_the_headers(data: bytes) -> Message:
    message = raw_headers(data)
    assert message.keys() == [*BASE_HEADERS, *MIME_HEADERS]
    assert message.defects == []
    parsed = email.message_from_bytes(data, policy=policy.default)
    parts = [
        (part.get_content_type(), part.get_content().replace("\r\n", "\n"))
        for part in parsed.iter_parts()
    ]
    assert parts == [("text/plain", TEXT), ("text/html", HTML)]
    return message


def assert_literal(message: Message, field: str, value: str) -> None:
    """The reader sees the value as typed (made one line), never what it decodes to."""
    expected = single_line(value)
    header = {"to": "To", "from": "From", "reply_to": "Reply-To"}.get(field)
    if header is not None:
        assert display_name(str(message[header])) == expected
    elif field == "subject":
        subject = decoded(str(message["Subject"]))
        assert subject == f"Welcome to Relay, {expected}: let's plan your rollout"
    else:
        assert message["List-Unsubscribe"] == f"<https://stepmail.example/unsubscribe/{expected}>"


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, Controller]]:
    handler = RecordingHandler()
    controller = start_server(handler)
    yield handler, controller
    controller.stop()


def through_outbox(tmp_path: Path) -> Callable[[OutgoingMail], bytes]:
    outbox = OutboxTransport(tmp_path / "outbox")

    def send(mail: OutgoingMail) -> bytes:
        result = outbox.send(mail)
        assert result.provider_message_id is not None
        return (outbox.directory / result.provider_message_id).read_bytes()

    return send


FIELDS = ["to", "from", "reply_to", "subject", "list_unsubscribe"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("form", list(HOSTILE))
def test_no_value_adds_a_header_to_an_outbox_file(tmp_path: Path, field: str, form: str) -> None:
    if field == "list_unsubscribe" and not single_line(HOSTILE[form]).isascii():
        pytest.skip("a header of our own must be ASCII: refused, see the test below")
    data = through_outbox(tmp_path)(make_mail(field, HOSTILE[form]))

    message = assert_exactly_the_headers(data)
    assert_literal(message, field, HOSTILE[form])


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("form", list(HOSTILE))
def test_no_value_adds_a_header_or_a_recipient_over_smtp(
    smtp_server: tuple[RecordingHandler, Controller], field: str, form: str
) -> None:
    if field == "list_unsubscribe" and not single_line(HOSTILE[form]).isascii():
        pytest.skip("a header of our own must be ASCII: refused, see the test below")
    handler, controller = smtp_server
    smtp = SmtpTransport("127.0.0.1", controller.port, timeout=2.0)
    try:
        smtp.send(make_mail(field, HOSTILE[form]))
    finally:
        smtp.close()

    [received] = handler.received
    assert received.mail_from == "onboarding@acme.example"
    assert received.rcpt_tos == ["taro@customer.example"]
    message = assert_exactly_the_headers(received.data)
    assert_literal(message, field, HOSTILE[form])


def test_smtp_gets_the_same_header_lines_with_crlf() -> None:
    mail = make_mail("subject", HOSTILE["encoded-word q"])
    for linesep in ("\n", "\r\n"):
        head = linesep.join([*mail.header_lines(), "MIME-Version: 1.0", ""]).encode()
        assert mail.as_bytes(linesep=linesep).startswith(head)


def test_a_non_ascii_value_in_a_header_of_our_own_is_refused(tmp_path: Path) -> None:
    mail = make_mail("list_unsubscribe", "caf\u00e9")
    with pytest.raises(PermanentDeliveryError, match="List-Unsubscribe"):
        through_outbox(tmp_path)(mail)
    assert list((tmp_path / "outbox").iterdir()) == []


@pytest.mark.parametrize(
    "headers",
    [{"Bcc": "victim@evil.com"}, {"From": "x@evil.com"}, {"X-Bad: yes\r\nX": "1"}, {"": "1"}],
)
def test_a_header_of_our_own_cannot_be_a_recipient_or_a_second_sender(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    mail = OutgoingMail(
        idempotency_key="k",
        sender=Mailbox("onboarding@acme.example", "Acme"),
        to=Mailbox("taro@customer.example"),
        subject="s",
        html="<p>x</p>",
        text="x",
        headers=headers,
    )
    with pytest.raises(PermanentDeliveryError, match="header name"):
        mail.as_bytes()


@pytest.mark.parametrize(
    "address",
    [
        "taro@customer.example>, victim@evil.com",
        "taro@customer.example\r\nBcc: victim@evil.com",
        "taro <taro@customer.example>",
        '"taro"@customer.example',
        "taro@customer.example(comment)",
        "=?utf-8?q?a?=@[127.0.0.1]",
        "no-at-sign",
    ],
)
def test_an_address_that_is_not_plain_is_never_sent(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, Controller], address: str
) -> None:
    mail = make_mail("to", "Taro")
    hostile = OutgoingMail(
        idempotency_key=mail.idempotency_key,
        sender=mail.sender,
        to=Mailbox(address, "Taro"),
        subject=mail.subject,
        html=mail.html,
        text=mail.text,
    )
    with pytest.raises(PermanentDeliveryError, match="address"):
        through_outbox(tmp_path)(hostile)
    handler, controller = smtp_server
    smtp = SmtpTransport("127.0.0.1", controller.port, timeout=2.0)
    try:
        with pytest.raises(PermanentDeliveryError, match="address"):
            smtp.send(hostile)
    finally:
        smtp.close()
    assert handler.received == []


def test_an_international_domain_is_written_as_idna(tmp_path: Path) -> None:
    mail = make_mail("to", "山田 太郎")
    international = OutgoingMail(
        idempotency_key="k",
        sender=mail.sender,
        to=Mailbox("taro@例え.jp", "山田 太郎"),
        subject="ようこそ",
        html=mail.html,
        text=mail.text,
    )
    message = email.message_from_bytes(international.as_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "taro@xn--r8jz45g.jp"
    assert message["To"].addresses[0].display_name == "山田 太郎"
    assert message["Subject"] == "ようこそ"


def test_plain_ascii_stays_readable_and_long_values_fold(tmp_path: Path) -> None:
    mail = make_mail("from", "Hanako Sato (Acme Cloud)")
    long_subject = "Three Relay features that would help " + "Sample Inc. " * 20
    folded = OutgoingMail(
        idempotency_key="k",
        sender=mail.sender,
        to=Mailbox("taro@customer.example", "Taro"),
        subject=long_subject,
        html=mail.html,
        text=mail.text,
    )
    head = mail.as_bytes().split(b"\n\n")[0].decode()
    assert 'From: "Hanako Sato (Acme Cloud)" <onboarding@acme.example>' in head
    assert "Subject: Welcome\n" in head and "To: Taro <taro@customer.example>" in head
    lines = folded.header_lines()
    assert len(lines) > 3 and all(len(line) <= 78 for line in lines)
    parsed = email.message_from_bytes(folded.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == single_line(long_subject)


@pytest.mark.parametrize("form", list(HOSTILE))
def test_sendgrid_gets_one_line_names_and_subjects(form: str) -> None:
    """SendGrid's JSON is not MIME (SendGrid writes the headers), but no name or subject
    carries a line break or a control character into it, and text stays literal."""
    transport = SendGridTransport("SG.test", "http://127.0.0.1:9")
    try:
        payload = transport.build_payload(
            OutgoingMail(
                idempotency_key="k",
                sender=Mailbox("onboarding@acme.example", HOSTILE[form]),
                to=Mailbox("taro@customer.example", HOSTILE[form]),
                reply_to=Mailbox("hanako@acme.example", HOSTILE[form]),
                subject=HOSTILE[form],
                html=HTML,
                text=TEXT,
            )
        )
    finally:
        transport.close()
    expected = single_line(HOSTILE[form])
    names = [
        payload["from"]["name"],
        payload["reply_to"]["name"],
        payload["personalizations"][0]["to"][0]["name"],
    ]
    assert [name.strip('"') for name in names] == [expected] * 3
    assert payload["subject"] == expected
    body = json_body(payload).decode()
    assert all(code not in json.loads(body)["subject"] for code in "\r\n\x00\u2028\u2029\x85")


def test_a_body_utf8_cannot_carry_fails_the_send_for_good(tmp_path: Path) -> None:
    mail = make_mail("to", "Taro")
    broken = OutgoingMail(
        idempotency_key="k",
        sender=mail.sender,
        to=mail.to,
        subject="s",
        html="<p>\ud800</p>",
        text="\ud800",
    )
    with pytest.raises(PermanentDeliveryError, match="body"):
        through_outbox(tmp_path)(broken)


LONG_TEXTS = ["佐藤花子" * 20, "é" * 100, "a_b c=d?e " * 30, HOSTILE["encoded-word b"] * 3]


@pytest.mark.parametrize("text", [*LONG_TEXTS, "😀x" * 40])
def test_encoded_words_are_short_and_give_back_the_text(text: str) -> None:
    words = encoded_words(text)
    assert all(len(word) <= 75 for word in words)
    assert decoded(" ".join(words)) == text
