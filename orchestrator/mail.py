"""The outgoing mail, as every transport receives it, and its RFC 5322 form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import format_datetime, make_msgid

_WHITESPACE = re.compile(r"\s+")
# Lines up to RFC 5322's hard limit: with the default 78, a List-Unsubscribe URL longer than a
# line is turned into RFC 2047 encoded words, which no mailbox provider reads as a URL.
MIME_POLICY = _default_policy.clone(max_line_length=998)


def single_line(value: str) -> str:
    """Fold CR, LF, tabs and runs of spaces into one space: no header can be smuggled in."""
    return _WHITESPACE.sub(" ", value).strip()


@dataclass(frozen=True)
class Mailbox:
    """A display name and an address; the name is always made single-line."""

    email: str
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", single_line(self.name))
        object.__setattr__(self, "email", single_line(self.email))

    def as_address(self) -> Address:
        username, _, domain = self.email.rpartition("@")
        return Address(display_name=self.name, username=username, domain=domain)


@dataclass(frozen=True)
class OutgoingMail:
    """A rendered mail ready for a transport.

    ``idempotency_key`` is stable for one enrollment × step, so transports that can
    deduplicate (the outbox file name, the Message-ID) do. ``metadata`` is what providers
    echo back in their events (SendGrid ``custom_args``): strings only.
    """

    idempotency_key: str
    sender: Mailbox
    to: Mailbox
    subject: str
    html: str
    text: str
    reply_to: Mailbox | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    message_id_domain: str = "stepmail.local"
    date: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", single_line(self.subject))
        clean = {single_line(k): single_line(v) for k, v in self.headers.items()}
        object.__setattr__(self, "headers", clean)

    @property
    def message_id(self) -> str:
        """Deterministic per idempotency key, so a resend is recognisably the same mail."""
        local = re.sub(r"[^A-Za-z0-9.-]", ".", self.idempotency_key)
        return f"<{local}@{self.message_id_domain}>"

    def to_email_message(self) -> EmailMessage:
        """The MIME form: multipart/alternative with the text part first, as clients expect."""
        message = EmailMessage(policy=MIME_POLICY)
        message["Subject"] = self.subject
        message["From"] = self.sender.as_address()
        message["To"] = self.to.as_address()
        if self.reply_to is not None:
            message["Reply-To"] = self.reply_to.as_address()
        message["Message-ID"] = self.message_id or make_msgid()
        if self.date is not None:
            message["Date"] = format_datetime(self.date)
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        return message
