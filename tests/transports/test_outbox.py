"""The outbox transport: one ``.eml`` per idempotency key, readable by any mail parser."""

from __future__ import annotations

import email
import os
import threading
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from orchestrator.settings import Settings
from orchestrator.transports.factory import make_transport
from orchestrator.transports.mail import Mailbox, OutgoingMail
from orchestrator.transports.outbox import (
    STALE_AFTER,
    SWEEP_EVERY,
    TEMP_PREFIX,
    TEMP_SUFFIX,
    OutboxTransport,
)


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


class Clocks:
    """A wall clock and a monotonic clock that move only when told to."""

    def __init__(self) -> None:
        self.wall, self.mono = time.time(), 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def leave_temp(directory: Path, name: str, age: float, now: float) -> Path:
    """A temporary file as a writer killed ``age`` seconds ago left it."""
    path = directory / f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}"
    path.write_bytes(b"half a mail")
    os.utime(path, (now - age, now - age))
    return path


def test_a_killed_writers_temp_files_are_swept_at_start_up(tmp_path: Path) -> None:
    now = time.time()
    stale = leave_temp(tmp_path, "killed", STALE_AFTER + 60, now)
    fresh = leave_temp(tmp_path, "writing", 5, now)  # another process is writing it now
    mail = tmp_path / "enr-1_welcome.eml"
    mail.write_bytes(b"a whole mail")
    os.utime(mail, (now - 86400, now - 86400))

    OutboxTransport(tmp_path)
    assert (stale.exists(), fresh.exists(), mail.exists()) == (False, True, True)


def test_a_long_running_transport_sweeps_again_later(tmp_path: Path) -> None:
    clocks = Clocks()
    outbox = OutboxTransport(
        tmp_path,
        sweep_every=SWEEP_EVERY,
        wall_clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )
    left = leave_temp(tmp_path, "killed", 0, clocks.wall)  # a writer dies now
    clocks.advance(SWEEP_EVERY - 1)
    outbox.send(make_mail("enr-1:welcome"))  # too young to be anybody's leftover yet
    assert left.exists()

    clocks.advance(STALE_AFTER)
    outbox.send(make_mail("enr-2:welcome"))
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enr-1_welcome.eml", "enr-2_welcome.eml"]


def test_sweeping_while_others_write_removes_none_of_their_files(tmp_path: Path) -> None:
    writers = [OutboxTransport(tmp_path) for _ in range(4)]
    sweeper = OutboxTransport(tmp_path, stale_after=0.5)
    stop = threading.Event()

    def sweep() -> None:
        while not stop.is_set():
            sweeper.sweep()

    thread = threading.Thread(target=sweep)
    thread.start()
    try:
        for n in range(200):
            writers[n % 4].send(make_mail(f"enr-{n}:welcome"))
    finally:
        stop.set()
        thread.join()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"enr-{n}_welcome.eml" for n in range(200))


def test_an_entry_the_sweeper_cannot_remove_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Probe L10: a stale temporary *folder* (any unlink error) stopped ``stepmail run`` with
    an IsADirectoryError. Housekeeping never stops the service."""
    now = time.time()
    folder = tmp_path / f"{TEMP_PREFIX}x{TEMP_SUFFIX}"
    folder.mkdir()
    os.utime(folder, (now - STALE_AFTER - 60, now - STALE_AFTER - 60))
    stale = leave_temp(tmp_path, "killed", STALE_AFTER + 60, now)

    with caplog.at_level("WARNING"):
        outbox = OutboxTransport(tmp_path)
    assert folder.is_dir() and not stale.exists()
    assert any("could not remove 1 stale temporary file" in r.message for r in caplog.records)
    outbox.send(make_mail())  # and it still sends
    assert (tmp_path / "enr-1_welcome.eml").exists()
