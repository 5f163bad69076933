"""SendGrid's raw event JSON → our vocabulary: no database, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from orchestrator.errors import InvalidEventBatch
from orchestrator.provider_events.sendgrid import SendGridEvents, content_digest
from orchestrator.provider_events.vocabulary import EventKind
from orchestrator.recipients.reasons import HARD_BOUNCE, SPAM_REPORT, UNSUBSCRIBE

RECEIVED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

# Shaped like the examples in SendGrid's Event Webhook reference.
RAW = [
    {"email": "a@example.com", "timestamp": 1513299569, "event": "processed",
     "sg_event_id": "sg-1", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
     "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "category": "cat facts",
     "stepmail_send_id": "42", "stepmail_journey": "onboarding"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "deferred", "sg_event_id": "sg-2",
     "response": "400 try again later", "attempt": "5"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "delivered", "sg_event_id": "sg-3",
     "response": "250 OK"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "bounce", "sg_event_id": "sg-4",
     "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "bounce", "sg_event_id": "sg-5",
     "reason": "550 blocked by policy", "status": "5.7.1", "type": "blocked",
     "bounce_classification": "Reputation"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "bounce", "sg_event_id": "sg-6",
     "reason": "452 mailbox full", "status": "4.2.2", "type": "bounce"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "dropped", "sg_event_id": "sg-7",
     "reason": "Bounced Address", "status": "5.0.0"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "open", "sg_event_id": "sg-8",
     "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "click", "sg_event_id": "sg-9",
     "url": "http://www.sendgrid.com/"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "spamreport",
     "sg_event_id": "sg-10"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "unsubscribe",
     "sg_event_id": "sg-11"},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "group_unsubscribe",
     "sg_event_id": "sg-12", "asm_group_id": 10},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "group_resubscribe",
     "sg_event_id": "sg-13", "asm_group_id": 10},
    {"email": "a@example.com", "timestamp": 1513299569, "event": "machine_opened",
     "sg_event_id": "sg-14"},
]  # fmt: skip


def parse(events: list[dict[str, object]]) -> list:  # type: ignore[type-arg]
    return SendGridEvents.parse_batch(json.dumps(events).encode(), RECEIVED)


def test_every_documented_event_maps_onto_our_vocabulary() -> None:
    kinds = [event.kind for event in parse(RAW)]
    assert kinds == [
        EventKind.QUEUED,
        EventKind.DEFERRED,
        EventKind.DELIVERED,
        EventKind.BOUNCED,
        EventKind.SOFT_BOUNCED,  # type: blocked
        EventKind.SOFT_BOUNCED,  # a 4.x.x status
        EventKind.REJECTED,
        EventKind.OPENED,
        EventKind.CLICKED,
        EventKind.COMPLAINED,
        EventKind.UNSUBSCRIBED,
        EventKind.UNSUBSCRIBED,
        EventKind.SUBSCRIBED,
        EventKind.UNKNOWN,  # stored as it came, never an error
    ]


def test_our_custom_args_and_sendgrids_ids_are_read() -> None:
    [processed] = parse(RAW[:1])
    assert processed.send_id == 42
    assert processed.provider_message_id == "14c5d75ce93"
    assert processed.event_id == "sg-1"
    assert processed.event_type == "processed"
    assert processed.email == "a@example.com"
    assert processed.occurred_at == datetime.fromtimestamp(1513299569, UTC)
    assert processed.payload == RAW[0]


def test_a_drop_for_a_listed_address_names_the_suppression() -> None:
    reasons = {
        "Bounced Address": HARD_BOUNCE,
        "Unsubscribed Address": UNSUBSCRIBE,
        "Spam Reporting Address": SPAM_REPORT,
        "Spam Content (if Spam Checker app is enabled)": None,
    }
    for reason, expected in reasons.items():
        [event] = parse([{"event": "dropped", "email": "x@example.com", "reason": reason}])
        assert event.suppress_as == expected, reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), ("0", None), ("-3", None), ("abc", None), ("４２", None), (None, None),
     ("99999999999999999999", None), ("2147483647", 2147483647), ("2147483648", None)],
)  # fmt: skip
def test_a_send_id_is_only_one_of_ours(value: object, expected: int | None) -> None:
    [event] = parse([{"event": "open", "email": "x@example.com", "stepmail_send_id": value}])
    assert event.send_id == expected


def test_missing_fields_have_safe_defaults() -> None:
    [event] = parse([{}])
    assert event.kind is EventKind.UNKNOWN
    assert event.email == ""
    assert event.occurred_at == RECEIVED
    assert event.event_id.startswith("sha256:")
    assert event.send_id is None and event.provider_message_id is None


def test_the_content_hash_ignores_the_event_id() -> None:
    first = dict(RAW[2])
    retried = {**first, "sg_event_id": "a-new-id"}
    assert content_digest(first) == content_digest(retried)
    assert content_digest(first) != content_digest({**first, "timestamp": 1})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not valid JSON"),
        (b'{"event": "open"}', "body must be a JSON array"),
        (b'[{"event": "open"}, 3]', "body[1] must be an object"),
    ],
)
def test_a_malformed_batch_is_refused_naming_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidEventBatch, match=message.replace("[", r"\[").replace("]", r"\]")):
        SendGridEvents.parse_batch(body, RECEIVED)
