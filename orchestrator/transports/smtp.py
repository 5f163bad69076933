"""Delivery to any SMTP relay over pooled, reused connections, with failures sorted by phase.

A worker sends from several threads, so idle connections wait in a small pool: each send takes
one (or opens one), and gives it back when the server still speaks to it. Whether a lost
connection is retryable depends on whether DATA had begun, which ``_TrackedSMTP`` remembers.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl as ssl_module
import threading
from typing import TYPE_CHECKING, NamedTuple

from orchestrator.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

logger = logging.getLogger(__name__)


class _TrackedSMTP(smtplib.SMTP):
    """An SMTP client that records whether DATA was sent: after that, silence is ambiguous."""

    data_sent = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_sent = True
        return super().data(msg)


class _TrackedSMTPSSL(_TrackedSMTP, smtplib.SMTP_SSL):
    """The implicit-TLS (port 465) variant of ``_TrackedSMTP``."""


class _Message(NamedTuple):
    """The envelope comes from the mail's addresses, never from its headers (as
    ``send_message`` would read them): a header cannot add a recipient."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes


class _LostBeforeData(TransientDeliveryError):
    """Raised when the connection died before DATA: the mail was not taken, resending is safe."""


class SmtpTransport:
    """Sends through an SMTP server; every socket operation is bounded by ``timeout``."""

    name = "smtp"
    idempotent = False

    def __init__(
        self,
        host: str,
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.starttls, self.ssl = starttls, ssl
        self._username, self._password = username, password
        self._lock = threading.Lock()
        self._idle: list[_TrackedSMTP] = []
        self._closed = False

    def send(self, mail: OutgoingMail) -> SendResult:
        message = _Message(*mail.envelope, mail.as_bytes(linesep="\r\n"))
        connection, reused = self._checkout()
        try:
            self._deliver(connection, message)
        except _LostBeforeData:
            if not reused:
                raise
            logger.debug("pooled SMTP connection to %s was stale; reconnecting", self.host)
            connection, _ = self._checkout(fresh=True)
            self._deliver(connection, message)
        self._checkin(connection)
        return SendResult(provider_message_id=mail.message_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            _quit_quietly(connection)

    def _deliver(self, connection: _TrackedSMTP, message: _Message) -> None:
        """One attempt on one connection, every failure turned into a ``DeliveryError``."""
        connection.data_sent = False
        try:
            connection.sendmail(message.mail_from, message.rcpt_to, message.data)
        except smtplib.SMTPServerDisconnected as exc:  # how smtplib reports resets and timeouts
            raise _classify_lost(connection, exc) from None
        except smtplib.SMTPRecipientsRefused as exc:
            self._checkin(connection)
            code, reply = next(iter(exc.recipients.values()))
            raise _classify_reply(code, reply) from None
        except smtplib.SMTPResponseException as exc:
            self._checkin(connection)
            raise _classify_reply(exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPException as exc:  # e.g. SMTPUTF8 needed but not offered
            self._checkin(connection)
            raise PermanentDeliveryError(f"SMTP server cannot take this mail: {exc}") from None
        except OSError as exc:  # a socket error smtplib left unwrapped
            raise _classify_lost(connection, exc) from None

    def _checkout(self, *, fresh: bool = False) -> tuple[_TrackedSMTP, bool]:
        """An idle pooled connection (reused=True) or a newly opened one."""
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, connection: _TrackedSMTP) -> None:
        """Return a connection that is still talking to the pool; close it if we are shut."""
        if connection.sock is None:
            return
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        _quit_quietly(connection)

    def _connect(self) -> _TrackedSMTP:
        try:
            connection = self._open()
        except smtplib.SMTPResponseException as exc:
            raise _classify_reply(exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientDeliveryError(f"SMTP server hung up during setup: {exc}") from None
        except smtplib.SMTPException as exc:  # e.g. no STARTTLS or AUTH method offered
            raise PermanentDeliveryError(f"SMTP session setup failed: {exc}") from None
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake
            raise TransientDeliveryError(
                f"cannot connect to SMTP server {self.host}:{self.port}: {exc}"
            ) from None
        return connection

    def _open(self) -> _TrackedSMTP:
        context = ssl_module.create_default_context()
        connection: _TrackedSMTP
        if self.ssl:
            connection = _TrackedSMTPSSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = _TrackedSMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.starttls and not self.ssl:
                connection.starttls(context=context)
                connection.ehlo()
            if self._username:
                connection.login(self._username, self._password or "")
        except BaseException:
            _discard(connection)
            raise
        return connection


def _classify_reply(code: int, reply: bytes | str) -> DeliveryError:
    """4xx means "try later", anything else the server said no to is final."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    message = f"SMTP {code} {text}".strip()
    if 400 <= code < 500:
        return TransientDeliveryError(message)
    return PermanentDeliveryError(message)


def _classify_lost(connection: _TrackedSMTP, exc: Exception) -> DeliveryError:
    """A dropped or timed-out connection: harmless before DATA, ambiguous after it."""
    _discard(connection)
    if connection.data_sent:
        return UnknownDeliveryOutcome(f"SMTP connection lost after DATA was sent: {exc}")
    return _LostBeforeData(f"SMTP connection lost before DATA: {exc}")


def _discard(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()


def _quit_quietly(connection: smtplib.SMTP) -> None:
    """Say QUIT politely, but never let a dead peer stop shutdown."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        _discard(connection)
