"""Delivery through SendGrid's v3 Mail Send API over one pooled keep-alive HTTP client.

The payload is built with SendGrid's own ``Mail`` helper so its shape follows the official
library; the HTTP side uses httpx, whose exceptions tell "never sent" (safe to retry) apart
from "sent, no answer" (an unknown outcome that must not be resent blindly).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
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
from orchestrator.mail import Mailbox, OutgoingMail
from orchestrator.transports.base import SendResult

logger = logging.getLogger(__name__)

SEND_PATH = "/v3/mail/send"
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

# Failures raised before any byte of the request could have been processed by SendGrid.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


class SendGridTransport:
    """Posts each mail to ``/v3/mail/send``; 202 means SendGrid took it.

    Not idempotent (the API has no idempotency key), but reconcilable: every payload carries
    our send id in ``custom_args``, and the event webhook echoes it back, so an unknown
    outcome can be settled by a ``processed`` or ``delivered`` event instead of a resend.
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
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sandbox_mode = sandbox_mode
        self._clock = clock
        self._client = client or build_client(api_key, api_host, timeout)

    def __repr__(self) -> str:  # never show the key, even in a debugger or a log line
        return f"SendGridTransport(api_host={str(self._client.base_url)!r})"

    def build_payload(self, mail: OutgoingMail) -> dict[str, Any]:
        """The JSON body for one mail, shaped by SendGrid's ``Mail`` helper."""
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
        payload = self.build_payload(mail)
        try:
            response = self._client.post(SEND_PATH, json=payload)
        except httpx.HTTPError as exc:
            raise _classify_exception(exc) from None
        if response.status_code in (200, 202):
            return SendResult(provider_message_id=response.headers.get("X-Message-Id"))
        raise self._classify_response(response)

    def close(self) -> None:
        self._client.close()

    def _classify_response(self, response: httpx.Response) -> DeliveryError:
        """429 and 5xx are worth retrying; any other refusal is final."""
        status, text = response.status_code, error_text(response)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers, now=self._clock())
            return TransientDeliveryError(
                "SendGrid did not take the mail", status=status, body=text, retry_after=retry_after
            )
        return PermanentDeliveryError("SendGrid refused the mail", status=status, body=text)


def build_client(api_key: str, api_host: str, timeout: float) -> httpx.Client:
    """A keep-alive client; connecting gets a shorter budget than waiting for the answer."""
    return httpx.Client(
        base_url=api_host,
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": "stepmail"},
        timeout=httpx.Timeout(connect=min(timeout, 5.0), read=timeout, write=timeout, pool=timeout),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


def clean_categories(categories: Iterable[str]) -> list[str]:
    """SendGrid takes at most 10 unique, non-empty categories of up to 255 characters."""
    unique: dict[str, None] = {}
    for category in categories:
        trimmed = category.strip()[:MAX_CATEGORY_LENGTH]
        if trimmed:
            unique.setdefault(trimmed, None)
    return list(unique)[:MAX_CATEGORIES]


def error_text(response: httpx.Response) -> str:
    """SendGrid's ``errors[].message`` (with the field at fault), else the raw body."""
    try:
        errors = response.json().get("errors") or []
        messages = [_describe_error(e) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        messages = []
    return "; ".join(m for m in messages if m) or response.text[:500]


def retry_after_seconds(headers: httpx.Headers, *, now: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date), else ``X-RateLimit-Reset`` (a unix time)."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        seconds = _parse_retry_after(retry_after, now)
        if seconds is not None:
            return seconds
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


def _parse_retry_after(value: str, now: float) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _describe_error(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "")
    field = error.get("field")
    return f"{field}: {message}" if field else message


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


def _classify_exception(exc: httpx.HTTPError) -> DeliveryError:
    """Never sent → retry; sent but unanswered → unknown, since SendGrid may have taken it."""
    if isinstance(exc, _NEVER_SENT):
        return TransientDeliveryError(f"SendGrid request not sent: {exc!r}")
    logger.warning("SendGrid request sent but no answer came back: %r", exc)
    return UnknownDeliveryOutcome(f"SendGrid request sent, outcome unknown: {exc!r}")
