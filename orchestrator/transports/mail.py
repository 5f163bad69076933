"""The outgoing mail, as every transport receives it, and its RFC 5322 form.

The headers are written by :mod:`orchestrator.guards.mail_headers`, never by the ``email`` package,
which would decode encoded-words in them and could write the decoded line breaks back
(CVE-2024-6923); that package only writes the body, whose content no header parser reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import format_datetime

from orchestrator.errors import UnsafeMailError
from orchestrator.guards.mail_headers import (
    addr_spec,
    header_block,
    mailbox,
    single_line,
    structured,
    unstructured,
)

# The body's policy, as mails have always been written (short UTF-8 lines stay 8bit).
MIME_POLICY = _default_policy.clone(max_line_length=998)
_NOT_IN_MESSAGE_ID = re.compile(r"[^A-Za-z0-9.-]")


@dataclass(frozen=True)
class Mailbox:
    """A display name and an address, both made single-line (what SendGrid's JSON gets too)."""

    email: str
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", single_line(self.name))
        object.__setattr__(self, "email", single_line(self.email))

    def header(self, field_name: str) -> list[str]:
        """``From: phrase <addr>``, folded; UnsafeMailError if the address is not plain."""
        return mailbox(field_name, self.name, self.email)


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
        local = _NOT_IN_MESSAGE_ID.sub(".", self.idempotency_key)
        domain = _NOT_IN_MESSAGE_ID.sub(".", self.message_id_domain)
        return f"<{local}@{domain}>"

    @property
    def envelope(self) -> tuple[str, list[str]]:
        """SMTP's MAIL FROM and RCPT TO: the plain addresses, never read back from headers."""
        return addr_spec(self.sender.email), [addr_spec(self.to.email)]

    def header_lines(self) -> list[str]:
        """Every header, written by :mod:`orchestrator.guards.mail_headers` (UnsafeMailError if one
        cannot be written safely)."""
        lines = [*unstructured("Subject", self.subject), *self.sender.header("From")]
        lines += self.to.header("To")
        if self.reply_to is not None:
            lines += self.reply_to.header("Reply-To")
        lines.append(f"Message-ID: {self.message_id}")
        if self.date is not None:
            lines.append(f"Date: {format_datetime(self.date)}")
        for name, value in self.headers.items():
            lines += structured(name, value)
        return lines

    def as_bytes(self, linesep: str = "\n") -> bytes:
        """The whole message: our header lines, then the MIME body (multipart/alternative,
        the text part first, as clients expect) with its own two header lines."""
        body = EmailMessage(policy=MIME_POLICY)
        try:
            body.set_content(self.text, subtype="plain", charset="utf-8")
            body.add_alternative(self.html, subtype="html", charset="utf-8")
        except UnicodeEncodeError:  # a lone surrogate that came in through data
            raise UnsafeMailError("the body holds text UTF-8 cannot carry") from None
        head = header_block(self.header_lines(), linesep)
        return head + body.as_bytes(policy=MIME_POLICY.clone(linesep=linesep))
