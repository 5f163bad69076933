"""SendGrid's event webhook payload → :class:`NormalizedEvent`.

SendGrid posts a JSON array of events. Each carries its ``event`` name, ``email``,
``timestamp``, ``sg_event_id`` (stable across its retries, usually), ``sg_message_id``
(``<X-Message-Id>.<filter suffix>``; delayed bounces may lack it) and, merged in at the top
level, the ``custom_args`` we sent: ``stepmail_send_id`` joins an event to its send.

Mapping follows the event reference: ``bounce`` is a hard bounce unless its ``type`` is
``blocked`` or its SMTP ``status`` is 4xx (then soft); ``deferred`` is not a bounce at all.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from orchestrator.errors import InvalidEventBatch, InvalidJson
from orchestrator.guards.bounds import ROW_ID_MAX
from orchestrator.guards.strict_json import parse_json
from orchestrator.provider_events.vocabulary import EventKind, NormalizedEvent
from orchestrator.recipients.reasons import HARD_BOUNCE, INVALID, SPAM_REPORT, UNSUBSCRIBE

SEND_ID_ARG = "stepmail_send_id"  # the custom_args key compose.py puts on every mail
MAX_SEND_ID = ROW_ID_MAX


def _refuse(kind: str, loc: list[str | int], message: str) -> InvalidEventBatch:
    return InvalidEventBatch([{"type": kind, "loc": loc, "msg": message}])


class SendGridEvents:
    """Class-level tables from SendGrid's strings to ours, with ``UNKNOWN`` as the fallback."""

    provider: ClassVar[str] = "sendgrid"

    kinds: ClassVar[dict[str, EventKind]] = {
        "processed": EventKind.QUEUED,
        "deferred": EventKind.DEFERRED,
        "delivered": EventKind.DELIVERED,
        "bounce": EventKind.BOUNCED,
        "dropped": EventKind.REJECTED,
        "open": EventKind.OPENED,
        "click": EventKind.CLICKED,
        "spamreport": EventKind.COMPLAINED,
        "unsubscribe": EventKind.UNSUBSCRIBED,
        "group_unsubscribe": EventKind.UNSUBSCRIBED,
        "group_resubscribe": EventKind.SUBSCRIBED,
    }

    # ``bounce`` events whose ``type`` means "not this time" rather than "never".
    soft_bounce_types: ClassVar[frozenset[str]] = frozenset({"blocked"})

    # ``dropped`` reasons (lower case) that mean SendGrid already lists the address.
    drop_reasons: ClassVar[dict[str, str]] = {
        "bounced address": HARD_BOUNCE,
        "unsubscribed address": UNSUBSCRIBE,
        "spam reporting address": SPAM_REPORT,
        "invalid": INVALID,
    }

    @classmethod
    def parse_batch(cls, body: bytes, received_at: datetime) -> list[NormalizedEvent]:
        """The events of one webhook request; InvalidEventBatch if it is not an array of objects
        or breaks a rule of :func:`~orchestrator.guards.strict_json.parse_json`."""
        try:
            items = parse_json(body)
        except InvalidJson as exc:
            raise InvalidEventBatch(exc.errors) from None
        if not isinstance(items, list):
            raise _refuse("list_type", ["body"], "body must be a JSON array of events")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise _refuse("dict_type", ["body", index], f"body[{index}] must be an object")
        return [cls.normalize(item, received_at) for item in items]

    @classmethod
    def normalize(cls, event: dict[str, Any], received_at: datetime) -> NormalizedEvent:
        name = _text(event.get("event"), 40)
        kind = cls.kinds.get(name, EventKind.UNKNOWN)
        if kind is EventKind.BOUNCED and cls._is_soft(event):
            kind = EventKind.SOFT_BOUNCED
        content_hash = content_digest(event)
        event_id = _text(event.get("sg_event_id"), 100) or f"sha256:{content_hash[:64]}"[:100]
        return NormalizedEvent(
            provider=cls.provider,
            event_id=event_id,
            content_hash=content_hash,
            event_type=name,
            kind=kind,
            email=_text(event.get("email"), 320).lower(),
            occurred_at=_timestamp(event.get("timestamp"), received_at),
            send_id=_send_id(event.get(SEND_ID_ARG)),
            provider_message_id=_message_id(event.get("sg_message_id")),
            suppress_as=cls.drop_reasons.get(_text(event.get("reason"), 200).lower())
            if kind is EventKind.REJECTED
            else None,
            detail=_text(event.get("reason") or event.get("response"), 500),
            payload=event,
        )

    @classmethod
    def _is_soft(cls, event: dict[str, Any]) -> bool:
        bounce_type = _text(event.get("type"), 40).lower()
        status = _text(event.get("status"), 20)
        return bounce_type in cls.soft_bounce_types or status.startswith("4")


def content_digest(event: dict[str, Any]) -> str:
    """SHA-256 of the event minus ``sg_event_id``: the same event retried under a new id
    hashes the same. (Two genuinely distinct events identical to the second, such as two
    opens from one client in one second, count once.)"""
    content = {k: v for k, v in event.items() if k != "sg_event_id"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _timestamp(value: Any, default: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return default


def _send_id(value: Any) -> int | None:
    """Our id, if the custom arg holds one; anything else (another sender's mail) is None."""
    text = _text(value, 20)
    if not text.isdigit() or not text.isascii():
        return None
    number = int(text)
    return number if 0 < number <= MAX_SEND_ID else None


def _message_id(value: Any) -> str | None:
    """``sg_message_id`` is the ``X-Message-Id`` we stored plus ``.<filter suffix>``."""
    text = _text(value, 500)
    return text.split(".", 1)[0][:255] or None
