"""A window of mails posted to SendGrid at once (``SendGridTransport.send_many``): side by side
over the thread's own kept connections, each mail with the outcome it would have alone, and
never a mail posted twice."""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pycurl
import pytest

from orchestrator.errors import (
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.transports import curl_post
from orchestrator.transports.base import SendResult
from orchestrator.transports.sendgrid import SendGridTransport
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.transports.test_sendgrid import (
    _answer_once_then_hang_up,
    certificate,
    make_mail,
    sendgrid,
    tls_sendgrid,
    transport,
)

__all__ = ["certificate", "sendgrid", "tls_sendgrid", "transport"]  # fixtures


def test_a_window_is_posted_at_once_and_its_connections_are_kept(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    arrived = threading.Barrier(4, timeout=2.0)  # each answer waits for all four requests

    def together(body: object) -> str:
        try:
            arrived.wait()
        except threading.BrokenBarrierError:
            return "500"  # posted one after another: never reached
        return "ok"

    sendgrid.script(together)
    first = transport.send_many([make_mail(subject=f"a{n}") for n in range(4)])
    second = transport.send_many([make_mail(subject=f"b{n}") for n in range(4)])

    assert all(isinstance(result, SendResult) for result in first + second)
    given = {mail.message_id for mail in sendgrid.accepted}
    assert {result.provider_message_id for result in first + second} == given  # type: ignore[union-attr]
    assert len(given) == 8
    assert sendgrid.connections == 4  # the second window went over the first one's


def test_each_mail_of_a_window_has_the_outcome_it_would_have_alone(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    answers = {"ok": "ok", "slow down": "429", "refused": "400", "hangs": "hang", "drops": "drop"}
    sendgrid.script(lambda body: answers[body["subject"]])

    results = transport.send_many([make_mail(subject=subject) for subject in answers])

    ok, slow_down, refused, hangs, drops = results
    assert isinstance(ok, SendResult) and ok.provider_message_id
    assert isinstance(slow_down, TransientDeliveryError)
    assert (slow_down.status, slow_down.retry_after) == (429, 1.0)
    assert isinstance(refused, PermanentDeliveryError) and refused.status == 400
    assert isinstance(hangs, UnknownDeliveryOutcome)
    assert isinstance(drops, UnknownDeliveryOutcome)
    # the connections of the failed posts are not used again; the next window goes through
    sendgrid.script(lambda body: "ok")
    again = transport.send_many([make_mail(), make_mail()])
    assert all(isinstance(result, SendResult) for result in again)


def test_a_mail_that_cannot_be_written_fails_alone(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    mails = [
        make_mail(subject="first"),
        make_mail(subject="broken", html="lone \ud800"),
        make_mail(subject="last"),
    ]

    first, broken, last = transport.send_many(mails)

    assert isinstance(broken, PermanentDeliveryError)
    assert isinstance(first, SendResult) and isinstance(last, SendResult)
    assert sorted(mail.body["subject"] for mail in sendgrid.accepted) == ["first", "last"]


def test_a_closed_transport_posts_no_window(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    transport.close()
    results = transport.send_many([make_mail(), make_mail()])
    assert all(isinstance(result, TransientDeliveryError) for result in results)
    assert all("closed" in str(result) for result in results)
    assert sendgrid.accepted == []


def test_a_window_under_way_when_the_transport_closes_is_answered(
    sendgrid: FakeSendGrid, transport: SendGridTransport
) -> None:
    arrived, go = threading.Barrier(3, timeout=2.0), threading.Event()

    def held(body: object) -> str:
        arrived.wait()
        go.wait(2.0)
        return "ok"

    sendgrid.script(held)
    results: list[object] = []
    sender = threading.Thread(
        target=lambda: results.extend(transport.send_many([make_mail(), make_mail()]))
    )
    sender.start()
    arrived.wait()  # both requests are at the server
    transport.close()
    go.set()
    sender.join()

    assert len(results) == 2 and all(isinstance(result, SendResult) for result in results)
    after = transport.send_many([make_mail(), make_mail()])
    assert all(isinstance(result, TransientDeliveryError) for result in after)


def test_a_kept_connection_closed_without_an_answer_is_never_posted_again() -> None:
    """The window's form of the single post's guarantee: libcurl would resend a request
    whose kept connection closed before answering, and may not."""
    bodies: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = threading.Thread(target=_answer_once_then_hang_up, args=(server, bodies))
        peer.start()
        transport = SendGridTransport("SG.key", f"http://127.0.0.1:{server.getsockname()[1]}")
        try:
            [first] = transport.send_many([make_mail(subject="first")])
            [second] = transport.send_many([make_mail(subject="second")])
        finally:
            transport.close()
            peer.join()
    assert isinstance(first, SendResult)
    assert isinstance(second, UnknownDeliveryOutcome)
    assert [json.loads(body)["subject"] for body in bodies] == ["first", "second"]


# -- TLS and the egress proxy, as for a single post --------------------------------------------


@pytest.fixture
def no_proxy_but_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy_but_ours")
def test_a_window_goes_through_the_proxy_tunnel_with_tls_verified(
    tls_sendgrid: FakeSendGrid, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        transport = SendGridTransport(tls_sendgrid.api_key, tls_sendgrid.url, timeout=2.0)
        try:
            results = transport.send_many([make_mail(), make_mail(), make_mail()])
        finally:
            transport.close()
    assert all(isinstance(result, SendResult) for result in results)
    assert proxy.tunnels == [tls_sendgrid.url.removeprefix("https://")] * 3
    assert len(tls_sendgrid.accepted) == 3


@pytest.mark.usefixtures("no_proxy_but_ours")
def test_a_window_to_an_untrusted_certificate_is_never_sent(
    tls_sendgrid: FakeSendGrid,
) -> None:
    # the stand-in's certificate is in neither SSL_CERT_FILE nor the system store
    transport = SendGridTransport(tls_sendgrid.api_key, tls_sendgrid.url, timeout=2.0)
    try:
        results = transport.send_many([make_mail(), make_mail()])
    finally:
        transport.close()
    assert all(isinstance(result, TransientDeliveryError) for result in results)
    assert all("not sent" in str(result) for result in results)
    assert tls_sendgrid.accepted == []


@pytest.fixture
def descriptors_past_1024() -> Iterator[None]:
    """The process holds descriptors up to past 1,024 (select()'s limit), so the window's
    next sockets are numbered above it. Skipped where the hard limit does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1400
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the descriptor limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held: list[int] = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_window_waits_on_sockets_numbered_past_select_s_limit(
    sendgrid: FakeSendGrid,
    transport: SendGridTransport,
    descriptors_past_1024: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window waits with poll() on the sockets libcurl names, whatever their number:
    select() sees none past 1,024, and libcurl's own fdset leaves them out."""
    watched: list[int] = []
    watch = curl_post._Window._watch

    def spied(self: curl_post._Window, what: int, sock: int, multi: object, data: object) -> None:
        watched.append(sock)
        watch(self, what, sock, multi, data)

    monkeypatch.setattr(curl_post._Window, "_watch", spied)
    arrived = threading.Barrier(4, timeout=2.0)
    sendgrid.script(lambda body: "ok" if arrived.wait() >= 0 else "500")

    results = transport.send_many([make_mail(subject=f"a{n}") for n in range(4)])

    assert all(isinstance(result, SendResult) for result in results)
    assert min(watched) > 1024


def _not_open_descriptor() -> int:
    """A descriptor number no file has in this process (poll() answers POLLNVAL for it)."""
    for fd in range(1021, 900, -1):
        try:
            os.fstat(fd)
        except OSError:
            return fd
    pytest.skip("no free descriptor number below 1,022")


def test_a_watched_socket_that_is_no_longer_open_is_dropped_not_polled_in_a_loop(
    sendgrid: FakeSendGrid, transport: SendGridTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket in the window's watch list that is no longer open (closed without libcurl's
    POLL_REMOVE) is dropped at the first poll() that says so: polled again, it would wake
    every wait at once while the window's mails are answered, and its number may soon be
    another file's. The window's mails are answered as usual."""
    stale = _not_open_descriptor()
    watch = curl_post._Window._watch
    wait = curl_post._Window._wait
    windows: list[curl_post._Window] = []
    waits = 0

    def planted(self: curl_post._Window, what: int, sock: int, multi: object, data: object) -> None:
        if not windows:
            windows.append(self)
            self._watched[stale] = select.POLLIN
        watch(self, what, sock, multi, data)

    def counted(self: curl_post._Window) -> None:
        nonlocal waits
        waits += 1
        wait(self)

    monkeypatch.setattr(curl_post._Window, "_watch", planted)
    monkeypatch.setattr(curl_post._Window, "_wait", counted)

    def slow_ok(body: dict[str, object]) -> str:
        time.sleep(0.3)
        return "ok"

    sendgrid.script(slow_ok)

    results = transport.send_many([make_mail(subject=f"a{n}") for n in range(2)])

    assert all(isinstance(result, SendResult) for result in results)
    assert stale not in windows[0]._watched
    assert waits < 50  # each wait woke for a socket of the window or libcurl's timeout


def test_a_handle_the_window_cannot_take_is_closed_and_no_mail_goes(
    sendgrid: FakeSendGrid, transport: SendGridTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libcurl refuses the window's second transfer: the window is given up before anything
    is posted, each mail is a plain transient failure (never sent, so retried at once, not
    left in doubt), and the refused handle is closed, not left to the garbage collector."""
    real_multi = pycurl.CurlMulti
    refused: list[pycurl.Curl] = []

    class RefusesTheSecond:
        def __init__(self) -> None:
            self._multi = real_multi()
            self._added = 0

        def add_handle(self, handle: pycurl.Curl) -> None:
            self._added += 1
            if self._added == 2:
                refused.append(handle)
                raise pycurl.error(pycurl.E_MULTI_OUT_OF_MEMORY, "out of memory")
            self._multi.add_handle(handle)

        def __getattr__(self, name: str) -> object:
            return getattr(self._multi, name)

    monkeypatch.setattr(pycurl, "CurlMulti", RefusesTheSecond)
    results = transport.send_many([make_mail(subject=f"a{n}") for n in range(3)])

    assert all(isinstance(result, TransientDeliveryError) for result in results)
    assert not any(isinstance(result, UnknownDeliveryOutcome) for result in results)
    assert sendgrid.accepted == []
    with pytest.raises(pycurl.error):  # closed: a closed handle has nothing to tell
        refused[0].getinfo(pycurl.REQUEST_SIZE)
