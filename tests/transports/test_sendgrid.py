"""The SendGrid transport against a local fake that validates every body with the OpenAPI."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.delivery.outcomes import retry_delay
from orchestrator.errors import (
    ConfigurationError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.settings import Settings
from orchestrator.transports.curl_post import MAX_ANSWER, CurlPost
from orchestrator.transports.factory import make_transport
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.sendgrid import (
    LONGEST_PROVIDER_WAIT,
    SendGridTransport,
    error_text,
    json_body,
    retry_after_seconds,
)
from tests.fakes.certificates import write_self_signed
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.sendgrid_server import DEFAULT_SPEC, FakeSendGrid, body_validator
from tests.support.environment import FixedDraw

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


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return write_self_signed(tmp_path)


@pytest.fixture
def tls_sendgrid(certificate: tuple[Path, Path]) -> Iterator[FakeSendGrid]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)
    with FakeSendGrid(tls=tls) as server:
        yield server


# -- what is sent ----------------------------------------------------------------------------


def test_a_mail_is_accepted_with_a_valid_payload(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    result = transport.send(make_mail())

    assert sendgrid.invalid == []
    [received] = sendgrid.accepted
    assert result.provider_message_id == received.message_id
    assert received.headers["authorization"] == f"Bearer {sendgrid.api_key}"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"] == "stepmail"
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


HELPER_CASES = [
    {},
    {"reply_to": None, "metadata": {}, "categories": ()},
    {"text": "", "html": "<p>html only</p>"},
    {"text": "text only", "html": ""},
    {"sender": Mailbox("onboarding@example.com", ""), "to": Mailbox("t@example.jp", "")},
    {"to": Mailbox("t@example.jp", 'Doe, "Jane"; <x@y>')},
    {"subject": "=?utf-8?q?x=0D=0ABcc=3A_y?=", "headers": {"BCC": "y@evil", "X-A": "1"}},
    {"categories": ("a", "a", " ", "x" * 300, *(f"c{i}" for i in range(12)))},
    {"metadata": {"n": 7, "s": "séquence"}},
]


@pytest.mark.parametrize("sandbox", [False, True])
@pytest.mark.parametrize("changes", HELPER_CASES)
def test_the_payload_is_the_one_sendgrids_helper_makes(
    changes: dict[str, object], sandbox: bool
) -> None:
    """The send path builds the dict itself (the helper's objects cost a tenth of a send's
    CPU); it must be exactly what the official helper makes, key order included."""
    transport = SendGridTransport("SG.key", "http://127.0.0.1:9", sandbox_mode=sandbox)
    mail = make_mail(**changes)
    fast, reference = transport.build_payload(mail), transport.build_payload_with_helper(mail)
    assert fast == reference
    assert list(fast) == list(reference)
    assert json_body(fast) == json_body(reference)


HOSTILE_TEXT = 'ようこそ "quoted" \\ back\x00\x01\x1f\x7f\t\r\n\u2028\u2029 </script> \U0001f600'


@pytest.mark.parametrize("sandbox", [False, True])
def test_the_body_is_the_bytes_json_dumps_writes(sandbox: bool) -> None:
    """orjson writes the body; the bytes are the standard library's, control characters,
    quotes, line separators and astral characters included."""
    transport = SendGridTransport("SG.key", "http://127.0.0.1:9", sandbox_mode=sandbox)
    mail = make_mail(
        subject=HOSTILE_TEXT.replace("\r", "").replace("\n", ""),
        html=f"<p>{HOSTILE_TEXT}</p>" * 50,
        text=HOSTILE_TEXT * 50,
    )
    payload = transport.build_payload(mail)
    standard = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert json_body(payload) == standard
    assert json.loads(json_body(payload)) == payload


def test_a_body_that_is_not_utf8_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        json_body({"subject": "lone \ud800 surrogate"})


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


@pytest.mark.parametrize("answer", [b"", b"garbage\r\n\r\n"], ids=["reset", "malformed"])
def test_a_reset_or_a_malformed_answer_after_the_request_is_an_unknown_outcome(
    answer: bytes,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = threading.Thread(target=_read_request_then_answer, args=(server, answer))
        peer.start()
        transport = SendGridTransport("SG.key", f"http://127.0.0.1:{server.getsockname()[1]}")
        try:
            with pytest.raises(UnknownDeliveryOutcome):
                transport.send(make_mail())
        finally:
            transport.close()
            peer.join()


def _read_request_then_answer(server: socket.socket, answer: bytes) -> None:
    """Read the whole request, then send ``answer``, or reset the connection if it is empty."""
    server.settimeout(2.0)  # a test that never connects fails instead of hanging
    connection, _ = server.accept()
    with connection:
        connection.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            while connection.recv(65536):
                pass
        if answer:
            connection.sendall(answer)
        else:  # a zero linger time makes close() send a TCP reset
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_name_that_does_not_resolve_is_transient() -> None:
    transport = SendGridTransport("SG.key", "https://api.sendgrid.invalid", timeout=1.0)
    try:  # .invalid never resolves (RFC 6761), with or without a DNS server
        with pytest.raises(TransientDeliveryError, match="not sent"):
            transport.send(make_mail())
    finally:
        transport.close()


def test_a_connect_timeout_is_transient() -> None:
    with socket.socket() as server:  # a full accept queue: the kernel drops further SYNs
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        queued = []
        for _ in range(8):
            probe = socket.socket()
            probe.setblocking(False)
            probe.connect_ex(server.getsockname())
            queued.append(probe)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        transport = SendGridTransport("SG.key", url, timeout=0.5)
        try:
            with pytest.raises(TransientDeliveryError, match="not sent"):
                transport.send(make_mail())
        finally:
            transport.close()
            for probe in queued:
                probe.close()


def test_no_free_connection_in_time_is_transient(sendgrid: FakeSendGrid) -> None:
    # 1.5 s: the held exchange may last 3 s (connect budget + timeout), the second send waits
    # 1.5 s for a connection, so a slow machine has 1.5 s of margin before the held one ends
    transport = SendGridTransport(sendgrid.api_key, sendgrid.url, 1.5, max_connections=1)
    sendgrid.script(["hang"])  # the one connection waits for an answer that comes too late
    held = threading.Thread(target=_send_expecting_no_answer, args=(transport,))
    held.start()
    try:
        while not sendgrid.accepted:  # the held request reached SendGrid
            threading.Event().wait(0.01)
        with pytest.raises(TransientDeliveryError, match="no free connection"):
            transport.send(make_mail())
        assert len(sendgrid.accepted) == 1  # only the held request reached SendGrid
    finally:
        held.join()
    transport.send(make_mail())
    transport.close()
    assert len(sendgrid.accepted) == 2


def _send_expecting_no_answer(transport: SendGridTransport) -> None:
    with contextlib.suppress(UnknownDeliveryOutcome):
        transport.send(make_mail())


def test_a_closed_transport_does_not_send(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    transport.close()
    with pytest.raises(TransientDeliveryError, match="closed"):
        transport.send(make_mail())
    assert sendgrid.accepted == []


def test_a_reused_connection_closed_without_an_answer_is_never_posted_again() -> None:
    """libcurl resends a request whose reused connection closed before answering; the
    transport stops it, so a server that took the mail and hung up gets it once."""
    bodies: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = threading.Thread(target=_answer_once_then_hang_up, args=(server, bodies))
        peer.start()
        transport = SendGridTransport("SG.key", f"http://127.0.0.1:{server.getsockname()[1]}")
        try:
            transport.send(make_mail(subject="first"))
            with pytest.raises(UnknownDeliveryOutcome):
                transport.send(make_mail(subject="second"))
        finally:
            transport.close()
            peer.join()
    assert [json.loads(body)["subject"] for body in bodies] == ["first", "second"]


def _answer_once_then_hang_up(server: socket.socket, bodies: list[bytes]) -> None:
    """Answer the first request 202, read the second whole and close without a word; then
    take (and record) any further connection for a while."""
    server.settimeout(2.0)
    connection, _ = server.accept()
    with connection:
        bodies.append(_read_request(connection))
        connection.sendall(
            b"HTTP/1.1 202 Accepted\r\nX-Message-Id: m1\r\nContent-Length: 0\r\n\r\n"
        )
        bodies.append(_read_request(connection))
    server.settimeout(1.0)
    with contextlib.suppress(TimeoutError):
        again, _ = server.accept()
        with again:
            bodies.append(_read_request(again))


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return body


def test_only_the_start_of_a_large_answer_is_kept() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        big = b"x" * (4 * MAX_ANSWER)
        answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
        peer = threading.Thread(target=_read_request_then_answer, args=(server, answer))
        peer.start()
        client = CurlPost(
            f"http://127.0.0.1:{server.getsockname()[1]}/v3/mail/send",
            {},
            connect_timeout=1.0,
            timeout=1.0,
            max_connections=1,
            pool_timeout=1.0,
        )
        try:
            got = client.post(b"{}")
        finally:
            client.close()
            peer.join()
    assert got.status == 400
    assert got.body == big[:MAX_ANSWER]


def test_tls_is_verified_against_ssl_cert_file(
    tls_sendgrid: FakeSendGrid, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    # The stand-in's handshake runs in a Python thread: under a loaded suite it once took
    # longer than CLIENT_TIMEOUT's 0.5 s connect timeout (libcurl: "timed out after 1830 ms").
    transport = SendGridTransport(tls_sendgrid.api_key, tls_sendgrid.url, timeout=2.0)
    try:
        transport.send(make_mail())
    finally:
        transport.close()
    assert len(tls_sendgrid.accepted) == 1


def test_an_untrusted_certificate_is_transient(certificate: tuple[Path, Path]) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)  # not in SSL_CERT_FILE nor in the system store
    refused: list[OSError] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = threading.Thread(target=_handshake, args=(server, tls, refused))
        peer.start()
        url = f"https://127.0.0.1:{server.getsockname()[1]}"
        transport = SendGridTransport("SG.key", url, timeout=CLIENT_TIMEOUT)
        try:
            with pytest.raises(TransientDeliveryError, match=r"not sent.*certificate"):
                transport.send(make_mail())
        finally:
            transport.close()
            peer.join()
    assert refused  # the handshake failed, so no byte of the request was sent


def _handshake(server: socket.socket, tls: ssl.SSLContext, refused: list[OSError]) -> None:
    server.settimeout(2.0)
    connection, _ = server.accept()
    with connection:
        try:  # with TLS 1.3 the server's side may complete before the client checks it
            with tls.wrap_socket(connection, server_side=True) as wrapped:
                received = wrapped.recv(1)
            if not received:
                refused.append(ConnectionError("closed without a request"))
        except (ssl.SSLError, ConnectionError) as exc:
            refused.append(exc)  # a TLS alert, or the client hanging up mid-handshake


def test_a_tls_handshake_that_never_completes_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers TLS
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        transport = SendGridTransport("SG.key", url, timeout=CLIENT_TIMEOUT)
        try:
            with pytest.raises(TransientDeliveryError, match="not sent"):
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
    assert retry_after_seconds({"x-ratelimit-reset": "1000"}, now=990.0) == 10.0
    assert retry_after_seconds({"retry-after": "3"}, now=0.0) == 3.0
    date = {"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}
    assert retry_after_seconds(date, now=10.0) == 20.0
    assert retry_after_seconds({}, now=0.0) is None


@pytest.mark.parametrize("garbled", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_a_wait_that_is_no_finite_number_is_no_wait(garbled: str) -> None:
    """Python reads these as floats; none is a time to wait (an infinite one overflowed the
    retry's timedelta and failed the batch)."""
    assert retry_after_seconds({"retry-after": garbled}, now=0.0) is None
    assert retry_after_seconds({"x-ratelimit-reset": garbled}, now=0.0) is None


def test_a_provider_wait_is_honoured_up_to_a_day() -> None:
    day = LONGEST_PROVIDER_WAIT
    assert retry_after_seconds({"retry-after": "1e12"}, now=0.0) == day
    assert retry_after_seconds({"x-ratelimit-reset": "99999999999"}, now=0.0) == day
    assert retry_after_seconds({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, now=0.0) == day
    assert retry_after_seconds({"retry-after": "-5"}, now=0.0) == 0.0
    longest = retry_delay(1, retry_after_seconds({"retry-after": "1e12"}, now=0.0), FixedDraw(0.0))
    assert longest == timedelta(days=1)


def test_error_text_falls_back_to_the_raw_body() -> None:
    assert error_text(b'{"errors": [{"message": "bad", "field": "subject"}]}') == "subject: bad"
    assert error_text(b'{"errors": 5}') == '{"errors": 5}'
    assert error_text("<html>障害".encode() + b"x" * 600) == "<html>障害" + "x" * 492


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


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> Iterator[None]:
    """No proxy settings but the test's own; the stand-in's certificate trusted."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    yield


def send_once(server: FakeSendGrid) -> None:
    transport = SendGridTransport(server.api_key, server.url, timeout=CLIENT_TIMEOUT)
    try:
        transport.send(make_mail())
    finally:
        transport.close()


@pytest.mark.usefixtures("proxy_env")
def test_https_proxy_from_the_environment_tunnels_the_post(
    tls_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("//", "//ops:s3cret@"))
        send_once(tls_sendgrid)
    target = tls_sendgrid.url.removeprefix("https://")
    assert proxy.tunnels == [target]
    assert proxy.authorizations == ["Basic " + base64.b64encode(b"ops:s3cret").decode()]
    assert len(tls_sendgrid.accepted) == 1  # TLS end to end: the proxy saw bytes only


@pytest.mark.usefixtures("proxy_env")
def test_no_proxy_sends_directly(
    tls_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        send_once(tls_sendgrid)
    assert proxy.tunnels == []
    assert len(tls_sendgrid.accepted) == 1


@pytest.mark.usefixtures("proxy_env")
def test_a_proxy_that_is_down_or_refuses_the_tunnel_is_transient(
    tls_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientDeliveryError, match="not sent"):
        send_once(tls_sendgrid)
    with ConnectProxy(refuse=True) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(TransientDeliveryError, match="not sent"):
            send_once(tls_sendgrid)
    assert proxy.tunnels and tls_sendgrid.accepted == []
