"""Delivery through SendGrid's v3 Mail Send API over a pool of keep-alive libcurl connections.

The payload is the one SendGrid's own ``Mail`` helper makes (a test holds them equal), built
as a plain dict on the send path and written by orjson. The HTTP side is
:class:`~orchestrator.transports.curl_post.CurlPost` (pycurl): the send path must reach
2,000 mails/s on two cores, and a POST costs ~0.03 ms of CPU there against ~0.18 ms through
urllib3 (and 0.50 ms through ``httpx``; docs/delivery.md and bench/README have the runs).

Failures are told apart by whether the request can have left, because a POST is never
resent blindly:

- never sent → ``TransientDeliveryError``: name resolution, refused or timed-out connection,
  a proxy that is down or refuses the tunnel, a failed TLS handshake or certificate (libcurl
  failed before the transfer began), no pooled connection free in time, a closed transport.
- maybe sent → ``UnknownDeliveryOutcome``: no answer in time, a reset or dropped connection, a
  malformed answer, a reused connection that closed before answering (libcurl may not resend
  it: :mod:`~orchestrator.transports.curl_post`).
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    From,
    Header,
    Mail,
    MailSettings,
    ReplyTo,
    SandBoxMode,
    To,
)

from orchestrator.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
)
from orchestrator.transports.base import SendResult
from orchestrator.transports.curl_post import Answer, CurlPost, MaybeSent, NeverSent
from orchestrator.transports.mail import Mailbox, OutgoingMail

logger = logging.getLogger(__name__)

SEND_PATH = "/v3/mail/send"
MAX_CONNECTIONS = 20  # the shared pool of single posts (send); windows keep their own
IN_FLIGHT = 8  # mails a sending thread posts at once (STEPMAIL_SENDGRID_IN_FLIGHT)
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255

# Headers SendGrid refuses to let a sender set (its Mail Send reference lists them); they
# are carried by dedicated payload fields instead, so a copy in ``headers`` is dropped.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)


class SendGridTransport:
    """Posts each mail to ``/v3/mail/send``; 202 means SendGrid took it.

    Not idempotent (the API has no idempotency key), but reconcilable: every payload carries
    our send id in ``custom_args``, and the event webhook echoes it back, so an unknown
    outcome can be settled by a ``processed`` or ``delivered`` event instead of a resend.

    ``in_flight``: how many mails one sending thread posts at the same time
    (:meth:`send_many`): a thread's throughput is ``in_flight`` mails a round trip, without
    more threads or database connections.
    """

    name = "sendgrid"
    idempotent = False
    reconcilable = True

    def __init__(
        self,
        api_key: str,
        api_host: str = "https://api.sendgrid.com",
        timeout: float = 10.0,
        sandbox_mode: bool = False,
        *,
        max_connections: int = MAX_CONNECTIONS,
        in_flight: int = IN_FLIGHT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sandbox_mode = sandbox_mode
        self.in_flight = in_flight
        self._clock = clock
        self._api_host = api_host
        self._http = build_client(api_key, api_host, timeout, max_connections)

    def __repr__(self) -> str:  # never show the key, even in a debugger or a log line
        return f"SendGridTransport(api_host={self._api_host!r})"

    def build_payload(self, mail: OutgoingMail) -> dict[str, Any]:
        """The JSON body for one mail: the dict SendGrid's ``Mail`` helper would make
        (:meth:`build_payload_with_helper`; a test holds the two equal), built directly
        because the helper's objects cost a tenth of a send's CPU."""
        payload: dict[str, Any] = {
            "from": _address(mail.sender),
            "subject": mail.subject,
            "personalizations": [{"to": [_address(mail.to)]}],
        }
        content = [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", mail.text), ("text/html", mail.html))
            if value
        ]
        if content:
            payload["content"] = content
        payload["headers"] = {"Message-ID": mail.message_id, **_allowed_headers(mail.headers)}
        categories = clean_categories(mail.categories)
        if categories:
            payload["categories"] = categories
        if mail.metadata:
            payload["custom_args"] = {k: str(v) for k, v in mail.metadata.items()}
        if self.sandbox_mode:
            payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
        if mail.reply_to is not None:
            payload["reply_to"] = _address(mail.reply_to)
        return payload

    def build_payload_with_helper(self, mail: OutgoingMail) -> dict[str, Any]:
        """The JSON body as SendGrid's own ``Mail`` helper shapes it: the reference
        :meth:`build_payload` is tested against."""
        message = Mail(
            from_email=From(*_email_and_name(mail.sender)),
            to_emails=To(*_email_and_name(mail.to)),
            subject=mail.subject,
            plain_text_content=mail.text or None,
            html_content=mail.html or None,
        )
        if mail.reply_to is not None:
            message.reply_to = ReplyTo(*_email_and_name(mail.reply_to))
        # The helper prepends each item, so feed lists reversed to keep the caller's order.
        headers = {"Message-ID": mail.message_id, **_allowed_headers(mail.headers)}
        message.header = [Header(k, v) for k, v in reversed(headers.items())]
        message.custom_arg = [CustomArg(k, str(v)) for k, v in reversed(mail.metadata.items())]
        message.category = [Category(c) for c in reversed(clean_categories(mail.categories))]
        if self.sandbox_mode:
            settings = MailSettings()
            settings.sandbox_mode = SandBoxMode(True)
            message.mail_settings = settings
        payload: dict[str, Any] = message.get()
        return payload

    def send(self, mail: OutgoingMail) -> SendResult:
        body = json_body(self.build_payload(mail))
        try:  # a POST is never retried blindly, and a redirect is not followed
            answer: Answer | NeverSent | MaybeSent = self._http.post(body)
        except (NeverSent, MaybeSent) as exc:
            answer = exc
        result = self._outcome(answer)
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_many(self, mails: Sequence[OutgoingMail]) -> list[SendResult | DeliveryError]:
        """Each mail posted at the same time (the delivery service passes at most
        :attr:`in_flight`), each one's result or error in order. A mail that cannot be written
        as JSON (a lone surrogate) is refused for good before anything is posted."""
        results: list[SendResult | DeliveryError | None] = [None] * len(mails)
        posted: list[tuple[int, bytes]] = []
        for index, mail in enumerate(mails):
            try:
                posted.append((index, json_body(self.build_payload(mail))))
            except ValueError as exc:
                results[index] = PermanentDeliveryError(f"the mail cannot be posted: {exc}")
        answers = self._http.post_many([body for _, body in posted])
        for (index, _), answer in zip(posted, answers, strict=True):
            results[index] = self._outcome(answer)
        return [result for result in results if result is not None]

    def close(self) -> None:
        self._http.close()

    def _outcome(self, answer: Answer | NeverSent | MaybeSent) -> SendResult | DeliveryError:
        """What one POST came to: 202 (or 200) is taken; never sent is worth retrying; maybe
        sent is an unknown outcome; any other answer is classified by its status."""
        if isinstance(answer, NeverSent):
            return TransientDeliveryError(f"SendGrid request not sent: {answer}")
        if isinstance(answer, MaybeSent):
            logger.warning("SendGrid request sent but no answer came back: %s", answer)
            return UnknownDeliveryOutcome(f"SendGrid request sent, outcome unknown: {answer}")
        if answer.status in (200, 202):
            return SendResult(provider_message_id=answer.header("X-Message-Id"))
        return self._classify_response(answer)

    def _classify_response(self, answer: Answer) -> DeliveryError:
        """429 and 5xx are worth retrying; any other refusal is final."""
        status, text = answer.status, error_text(answer.body)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(answer.headers(), now=self._clock())
            return TransientDeliveryError(
                "SendGrid did not take the mail", status=status, body=text, retry_after=retry_after
            )
        return PermanentDeliveryError("SendGrid refused the mail", status=status, body=text)


def build_client(
    api_key: str, api_host: str, timeout: float, max_connections: int = MAX_CONNECTIONS
) -> CurlPost:
    """Keep-alive connections shared by the worker's threads, at most ``max_connections``: a
    thread beyond them waits up to ``timeout`` for a free one (then never sent) rather than
    paying a TLS handshake for a connection used once. TLS is verified against the system
    store (``SSL_CERT_FILE`` honoured). Connecting gets a shorter budget (at most 5 s) than
    waiting for the answer.

    An HTTPS host is reached through the proxy the environment names (``HTTPS_PROXY``, not
    for hosts in ``NO_PROXY``), as curl and most HTTP clients do: a CONNECT tunnel, so the
    proxy sees neither the key nor the mail.
    """
    return CurlPost(
        api_host.rstrip("/") + SEND_PATH,
        {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "stepmail",
        },
        connect_timeout=min(timeout, 5.0),
        timeout=timeout,
        max_connections=max_connections,
        pool_timeout=timeout,  # waiting for a free connection: as long as for an answer
        proxy=proxy_for(api_host),
    )


def proxy_for(api_host: str) -> str | None:
    """The proxy for an HTTPS ``api_host`` from ``HTTPS_PROXY``/``https_proxy`` unless
    ``NO_PROXY`` lists the host; None for a direct connection (and for plain-HTTP hosts,
    which only local stand-ins use)."""
    url = urllib.parse.urlsplit(api_host)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get("https")
    if url.scheme != "https" or not proxy:
        return None
    # proxy_bypass_environment: the stdlib's NO_PROXY matching, missing from typeshed
    if urllib.request.proxy_bypass_environment(url.hostname or "", proxies):  # type: ignore[attr-defined]
        return None
    return proxy


def json_body(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, byte for byte what ``json.dumps(payload, separators=(",", ":"),
    ensure_ascii=False).encode()`` writes, in a tenth of its CPU (~0.005 against ~0.05 ms for
    a mail; tests/transports/test_sendgrid.py holds the two equal). Text that is not UTF-8 (a
    lone surrogate) raises ValueError, as ``encode`` did. The payload holds only strings,
    lists and dicts (:meth:`SendGridTransport.build_payload`), so no NaN can reach it, which
    orjson would write as ``null``."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"the SendGrid body is not JSON: {exc}") from None


def clean_categories(categories: Iterable[str]) -> list[str]:
    """SendGrid takes at most 10 unique, non-empty categories of up to 255 characters."""
    unique: dict[str, None] = {}
    for category in categories:
        trimmed = category.strip()[:MAX_CATEGORY_LENGTH]
        if trimmed:
            unique.setdefault(trimmed, None)
    return list(unique)[:MAX_CATEGORIES]


def error_text(body: bytes) -> str:
    """SendGrid's ``errors[].message`` (with the field at fault), else the raw body."""
    try:
        errors = json.loads(body).get("errors") or []
        messages = [_describe_error(e) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        messages = []
    return "; ".join(m for m in messages if m) or body.decode("utf-8", "replace")[:500]


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date), else ``X-RateLimit-Reset`` (a unix time),
    as seconds from ``now`` between 0 and :data:`LONGEST_PROVIDER_WAIT`; None if neither
    header says a finite time ("nan", "inf" and "1e999" are floats to Python, not waits).

    ``headers`` is keyed by lower-cased names (:meth:`Answer.headers`).
    """
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _parse_retry_after(retry_after, now)
        if seconds is not None:
            return seconds
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return _wait(float(reset) - now)
        except ValueError:
            return None
    return None


# A provider's wait is honoured up to a day: a longer one (or a garbled header) must not park
# a mail for years, nor overflow the retry time (a timedelta cannot hold 1e12 seconds).
LONGEST_PROVIDER_WAIT = 24 * 3600.0


def _wait(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), LONGEST_PROVIDER_WAIT)


def _parse_retry_after(value: str, now: float) -> float | None:
    try:
        return _wait(float(value))
    except ValueError:
        pass
    try:
        return _wait(parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, OverflowError):
        return None


def _describe_error(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "")
    field = error.get("field")
    return f"{field}: {message}" if field else message


def _address(mailbox: Mailbox) -> dict[str, str]:
    """``{"name", "email"}`` as the helper's ``Email.get`` writes it (no empty name)."""
    return (
        {"name": mailbox.name, "email": mailbox.email} if mailbox.name else {"email": mailbox.email}
    )


def _email_and_name(mailbox: Mailbox) -> tuple[str, str | None]:
    """The helper parses "Name <addr>" when the name is empty, so pass None instead."""
    return mailbox.email, mailbox.name or None


def _allowed_headers(headers: dict[str, str]) -> dict[str, str]:
    """Custom headers minus reserved ones and any Message-ID (we always set our own)."""
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in RESERVED_HEADERS and k.lower() != "message-id"
    }
