"""The frequency cap's rules and decision: pure functions with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.journeys.frequency_cap import (
    WAIT_BEHIND,
    CappedSend,
    cap_wait,
    parse_frequency_cap,
)

NOW = datetime(2026, 11, 10, 1, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RULES = parse_frequency_cap("1/day,3/week")


def send(
    id: int,
    *,
    state: str = "sent",
    sent_at: datetime | None = None,
    due_at: datetime = NOW,
    wake_at: datetime = NOW,
) -> CappedSend:
    return CappedSend(id=id, due_at=due_at, wake_at=wake_at, state=state, sent_at=sent_at)


def test_rules_parse_named_periods_and_durations() -> None:
    rules = parse_frequency_cap("1/day, 3/week,2/36h,10/month")
    assert [(r.limit, r.period, r.label) for r in rules] == [
        (1, DAY, "1/day"),
        (3, 7 * DAY, "3/week"),
        (2, timedelta(hours=36), "2/36h"),
        (10, 30 * DAY, "10/month"),
    ]


@pytest.mark.parametrize("text", ["", "1", "day/1", "0/day", "1/fortnight", "1/day,,x/week"])
def test_a_bad_cap_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid frequency cap"):
        parse_frequency_cap(text)


def test_the_first_mail_goes() -> None:
    assert cap_wait(RULES, send(1, state="sending"), [], NOW) is None


def test_one_a_day_waits_until_the_last_mail_leaves_the_rolling_day() -> None:
    earlier = send(1, sent_at=NOW - timedelta(hours=5))
    assert cap_wait(RULES, send(2, state="sending"), [earlier], NOW) == (
        NOW + timedelta(hours=19),
        "frequency cap 1/day reached",
    )
    later = NOW + timedelta(hours=19)
    assert cap_wait(RULES, send(2, state="sending"), [earlier], later) is None


def test_three_a_week_waits_for_the_oldest_of_the_three() -> None:
    sent = [send(i, sent_at=NOW - timedelta(days=d)) for i, d in ((1, 6), (2, 4), (3, 2))]
    wait = cap_wait(RULES, send(9, state="sending"), sent, NOW)
    assert wait == (NOW + DAY, "frequency cap 3/week reached")


def test_the_longest_wait_wins() -> None:
    sent = [send(i, sent_at=NOW - timedelta(days=d)) for i, d in ((1, 5), (2, 3), (3, 0.5))]
    until, why = cap_wait(RULES, send(9, state="sending"), sent, NOW) or (None, "")
    assert until == NOW + 2 * DAY and why == "frequency cap 3/week reached"


def test_mails_that_ended_unsent_hold_no_slot() -> None:
    ended = [
        send(1, state="failed", sent_at=NOW - timedelta(hours=1)),
        send(2, state="skipped", sent_at=NOW - timedelta(hours=1)),
        send(3, state="cancelled", sent_at=NOW - timedelta(hours=1)),
    ]
    assert cap_wait(RULES, send(9, state="sending"), ended, NOW) is None


def test_a_mail_in_flight_or_awaiting_a_retry_holds_its_slot() -> None:
    for state in ("sending", "pending", "unknown", "reconciling"):
        holder = send(1, state=state, sent_at=NOW - timedelta(minutes=1))
        assert cap_wait(RULES, send(9, state="sending"), [holder], NOW) is not None, state


def test_an_earlier_ready_mail_goes_first_and_a_later_one_does_not_block() -> None:
    mine = send(5, state="sending", due_at=NOW - timedelta(hours=1))
    earlier_due = send(9, state="dispatched", due_at=NOW - timedelta(hours=2))
    same_due_lower_id = send(3, state="sending", due_at=mine.due_at)
    later_due = send(2, state="dispatched", due_at=NOW)
    assert cap_wait(RULES, mine, [earlier_due], NOW) == (
        NOW + WAIT_BEHIND,
        "frequency cap 1/day: an earlier mail goes first",
    )
    assert cap_wait(RULES, mine, [same_due_lower_id], NOW) is not None
    assert cap_wait(RULES, mine, [later_due], NOW) is None


def test_a_mail_not_ready_yet_does_not_block() -> None:
    mine = send(5, state="sending")
    waiting = send(1, state="pending", due_at=NOW - DAY, wake_at=NOW + timedelta(hours=3))
    due_now = send(2, state="pending", due_at=NOW - DAY, wake_at=NOW)
    assert cap_wait(RULES, mine, [waiting], NOW) is None
    assert cap_wait(RULES, mine, [due_now], NOW) is not None
