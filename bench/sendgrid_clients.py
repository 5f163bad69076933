"""Mails a second, and this process's CPU per mail, through the SendGrid Mail Send API to a
local stand-in: SendGrid's official client (``SendGridAPIClient(...).send``: urllib, a new
connection per request, no timeout), a pooled keep-alive httpx client (the transport's HTTP
side until urllib3 replaced it, kept as the yardstick) and our transport (keep-alive libcurl
handles with timeouts; urllib3 before issue 14's session 6). All three send the identical
``Mail``-helper JSON body; each thread count gets a fresh client, a warm-up, then the timed
run. It prints numbers only.

    .venv/bin/python bench/sendgrid_clients.py
    .venv/bin/python bench/sendgrid_clients.py --mails 3000 --threads 1 8 16
    .venv/bin/python bench/sendgrid_clients.py --validating-fake   # bodies checked by the OpenAPI
    .venv/bin/python bench/sendgrid_clients.py --tls               # HTTPS, as the real API

The stand-in runs in a child process (``provider.FakeSendGridProcess``), so it does not share
this process's GIL and its CPU is not counted: "cpu" is this process's CPU time over the
timed mails, divided by their number (payload building, ~0.05 ms, included for every client).
Plain HTTP over loopback is the best case for a new connection per request; ``--tls`` serves
the validating fake over HTTPS with a throwaway certificate, so each new connection pays a
TLS handshake, as against api.sendgrid.com (where each one also costs two more network
round trips, which loopback cannot show).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provider import FakeSendGridProcess, FakeStats  # noqa: E402  (bench/ is the script's folder)
from sendgrid import SendGridAPIClient  # noqa: E402

from orchestrator.transports.mail import Mailbox, OutgoingMail  # noqa: E402
from orchestrator.transports.sendgrid import SEND_PATH, SendGridTransport  # noqa: E402
from tests.fakes.certificates import write_self_signed  # noqa: E402

API_KEY = "SG.bench-key"
WARM_UP = 50


class StandIn(Protocol):
    url: str

    def stats(self) -> FakeStats: ...

    def stop(self) -> None: ...


class TlsFakeProcess:
    """The validating FakeSendGrid over HTTPS, in a child process; the certificate is made
    here and trusted through ``SSL_CERT_FILE``, which urllib, httpx and the transport all honour."""

    def __init__(self, directory: Path) -> None:
        cert, key = write_self_signed(directory)
        os.environ["SSL_CERT_FILE"] = str(cert)
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_tls, args=(child, str(cert), str(key)))
        self._process.start()
        child.close()
        self.url: str = self._conn.recv()

    def stats(self) -> FakeStats:
        self._conn.send("stats")
        return FakeStats(*self._conn.recv())

    def stop(self) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._process.join(timeout=5)


def _serve_tls(conn: Connection, cert: str, key: str) -> None:
    from tests.fakes.sendgrid_server import FakeSendGrid

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    fake = FakeSendGrid(API_KEY, tls=tls).start()
    conn.send(fake.url)
    while conn.recv() != "stop":
        conn.send((len(fake.accepted), len(fake.invalid), fake.connections))
    fake.stop()
    conn.send(None)


@dataclass(frozen=True)
class Result:
    client: str
    threads: int
    mails: int
    seconds: float
    cpu_seconds: float
    latencies_ms: list[float]
    connections: int

    @property
    def per_second(self) -> float:
        return self.mails / self.seconds

    def line(self) -> str:
        p50 = statistics.median(self.latencies_ms)
        p99 = statistics.quantiles(self.latencies_ms, n=100)[98]
        cpu_ms = self.cpu_seconds / self.mails * 1000
        return (
            f"{self.client:<9} threads={self.threads:<3} {self.per_second:6.0f} mails/s  "
            f"cpu {cpu_ms:4.2f} ms/mail  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
            f"connections opened: {self.connections}"
        )


def sample_mail(n: int) -> OutgoingMail:
    """A mail the size of a real onboarding mail (~9 KB of JSON with both parts)."""
    paragraph = "<p>Relay のご登録ありがとうございます。はじめに、チームを招待しましょう。</p>"
    html = "<html><body>" + paragraph * 60 + "</body></html>"
    return OutgoingMail(
        idempotency_key=f"stepmail-{n}-welcome",
        sender=Mailbox("onboarding@acme.example", "Acme Cloud"),
        to=Mailbox(f"customer-{n}@example.jp", "山田 太郎"),
        reply_to=Mailbox("csm@acme.example", "佐藤 花子"),
        subject="【Relay】ご登録のお礼",
        html=html,
        text="Relay のご登録ありがとうございます。" * 60,
        headers={
            "List-Unsubscribe": f"<https://stepmail.example.com/unsubscribe/t{n}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        metadata={
            "stepmail_send_id": str(n),
            "stepmail_enrollment_id": str(n),
            "stepmail_journey": "onboarding",
            "stepmail_step": "welcome",
            "stepmail_tier": "tech",
        },
        categories=("onboarding", "onboarding/welcome", "tier-tech"),
        message_id_domain="acme.example",
    )


def official_sender(url: str) -> Callable[[OutgoingMail], None]:
    """SendGrid's client, one per thread (urllib underneath; nothing is shared or pooled)."""
    import threading

    local = threading.local()
    builder = SendGridTransport(API_KEY, url)  # only its build_payload is used

    def send(mail: OutgoingMail) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = SendGridAPIClient(api_key=API_KEY, host=url)
        response: Any = client.send(builder.build_payload(mail))
        assert response.status_code == 202

    return send


def httpx_sender(url: str) -> tuple[Callable[[OutgoingMail], None], Callable[[], None]]:
    """The transport's former HTTP side: one pooled keep-alive httpx client, shared by every
    thread, with the same timeouts and limits it had."""
    builder = SendGridTransport(API_KEY, url)  # only its build_payload is used
    client = httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {API_KEY}", "User-Agent": "stepmail"},
        timeout=httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )

    def send(mail: OutgoingMail) -> None:
        response = client.post(SEND_PATH, json=builder.build_payload(mail))
        assert response.status_code == 202

    def close() -> None:
        client.close()
        builder.close()

    return send, close


def transport_sender(url: str) -> tuple[Callable[[OutgoingMail], None], Callable[[], None]]:
    """Our transport, one per process as in a worker, shared by every thread."""
    transport = SendGridTransport(API_KEY, url, timeout=10.0)

    def send(mail: OutgoingMail) -> None:
        transport.send(mail)

    return send, transport.close


def run(
    client: str,
    send: Callable[[OutgoingMail], None],
    threads: int,
    mails: Sequence[OutgoingMail],
    fake: StandIn,
) -> Result:
    def timed(mail: OutgoingMail) -> float:
        start = time.perf_counter()
        send(mail)
        return (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(timed, mails[:WARM_UP]))
        before = fake.stats()
        start, cpu_start = time.perf_counter(), time.process_time()
        latencies = list(pool.map(timed, mails[WARM_UP:]))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        after = fake.stats()
    assert after.invalid == before.invalid, "the stand-in refused a payload"
    return Result(
        client,
        threads,
        len(latencies),
        seconds,
        cpu_seconds,
        latencies,
        after.connections - before.connections,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000, help="timed mails per run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8], help="thread counts")
    parser.add_argument(
        "--validating-fake",
        action="store_true",
        help="post to the tests' FakeSendGrid (checks bodies, ~1.2 ms CPU a request)",
    )
    parser.add_argument(
        "--tls", action="store_true", help="HTTPS to the validating fake (implies it)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    mails = [sample_mail(n) for n in range(args.mails + WARM_UP)]
    with tempfile.TemporaryDirectory(prefix="stepmail-bench-") as directory:
        fake: StandIn
        if args.tls:
            fake, kind = TlsFakeProcess(Path(directory)), "validating FakeSendGrid over TLS"
        elif args.validating_fake:
            fake = FakeSendGridProcess(API_KEY, validating=True)
            kind = "validating FakeSendGrid"
        else:
            fake = FakeSendGridProcess(API_KEY, validating=False)
            kind = "minimal 202 server"
        print(f"stand-in: {kind} at {fake.url}; {args.mails} timed mails per run")
        report(compare(args.threads, mails, fake), args.threads)


def compare(
    threads_list: Sequence[int], mails: Sequence[OutgoingMail], fake: StandIn
) -> list[Result]:
    results: list[Result] = []
    try:
        for threads in threads_list:
            results.append(run("official", official_sender(fake.url), threads, mails, fake))
            for client, sender in (("httpx", httpx_sender), ("transport", transport_sender)):
                send, close = sender(fake.url)
                try:
                    results.append(run(client, send, threads, mails, fake))
                finally:
                    close()
    finally:
        fake.stop()
    return results


def report(results: Sequence[Result], threads_list: Sequence[int]) -> None:
    for result in results:
        print(result.line())
    for threads in threads_list:
        official, via_httpx, ours = (r for r in results if r.threads == threads)
        print(
            f"threads={threads}: the transport is {ours.per_second / official.per_second:.1f}x "
            f"the official client and {ours.per_second / via_httpx.per_second:.1f}x httpx"
        )


if __name__ == "__main__":
    main()
