"""The cross-journey frequency cap: at most N mails per rolling period per customer.

``STEPMAIL_FREQUENCY_CAP="1/day,3/week"``. Pure functions: the caller reads the customer's sends
under a lock and asks :func:`cap_wait` whether one more may go now, or until when it must wait.

A send *holds a slot* from the moment the cap admits it (its ``admitted_at``, so a mail still
in flight counts for a concurrent worker; ``sent_at`` for mails sent before the cap was on)
until it ends without being sent. Among sends due at once the order is stable: earlier
``due_at`` first, then lower id, so two workers never leapfrog each other; a later send waits
while an earlier one that is ready has not gone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from orchestrator.journeys.durations import parse_duration
from orchestrator.journeys.states import SendState

NAMED_PERIODS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}
CAP_EXAMPLE = (
    "expected e.g. '1/day,3/week' (periods: hour, day, week, month or a duration like 36h)"
)
_RULE = re.compile(r"^\s*(\d{1,6})\s*/\s*(.+?)\s*$")
MAX_LIMIT = 10_000
MAX_PERIOD = timedelta(days=366)

# A send in one of these states with a ``sent_at`` holds a slot; the others ended unsent.
HOLDING_STATES = frozenset(
    {
        SendState.PENDING,  # a transient retry keeps the slot it was admitted to
        SendState.DISPATCHED,
        SendState.SENDING,
        SendState.STALLED,
        SendState.RECONCILING,
        SendState.SENT,
        SendState.UNKNOWN,
    }
)
READY_STATES = frozenset({SendState.DISPATCHED, SendState.SENDING, SendState.STALLED})
# How soon a send waiting behind an earlier, ready one looks again: that one is being handled.
WAIT_BEHIND = timedelta(minutes=1)


@dataclass(frozen=True)
class CapRule:
    """At most ``limit`` mails in any rolling ``period``; ``label`` is how the operator wrote it."""

    limit: int
    period: timedelta
    label: str


@dataclass(frozen=True)
class CappedSend:
    """One of the customer's sends, as the cap sees it (transactional ones are left out)."""

    id: int
    due_at: datetime
    wake_at: datetime
    state: str
    sent_at: datetime | None  # when it took its slot: admitted by the cap, or else sent


@lru_cache(maxsize=64)
def parse_frequency_cap(text: str) -> tuple[CapRule, ...]:
    """``"1/day,3/week"`` → rules; ValueError naming the expected form otherwise."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RULE.match(part)
        if match is None:
            raise ValueError(f"invalid frequency cap {part[:40]!r}: {CAP_EXAMPLE}")
        limit, unit = int(match[1]), match[2].lower()
        period = NAMED_PERIODS.get(unit)
        if period is None:
            try:
                period = parse_duration(unit)
            except ValueError:
                raise ValueError(f"invalid frequency cap {part[:40]!r}: {CAP_EXAMPLE}") from None
        if not (1 <= limit <= MAX_LIMIT and timedelta(0) < period <= MAX_PERIOD):
            raise ValueError(
                f"invalid frequency cap {part!r}: the limit must be 1 to {MAX_LIMIT} and the "
                f"period at most {MAX_PERIOD.days} days"
            )
        rules.append(CapRule(limit, period, f"{limit}/{unit}"))
    if not rules:
        raise ValueError(f"invalid frequency cap {text!r}: {CAP_EXAMPLE}")
    return tuple(rules)


def cap_wait(
    rules: Sequence[CapRule], mine: CappedSend, others: Sequence[CappedSend], now: datetime
) -> tuple[datetime, str] | None:
    """None when ``mine`` may go now; else when to look again and why.

    ``others`` are the customer's other capped sends: any holding a slot within the longest
    period, and any that are ready now.
    """
    held = sorted(s.sent_at for s in others if s.sent_at is not None and s.state in HOLDING_STATES)
    ahead = sum(1 for s in others if s.sent_at is None and _ready(s, now) and _before(s, mine))
    waits: list[tuple[datetime, str]] = []
    for rule in rules:
        in_period = [moment for moment in held if moment > now - rule.period]
        if len(in_period) >= rule.limit:
            until = in_period[len(in_period) - rule.limit] + rule.period
            waits.append((until, f"frequency cap {rule.label} reached"))
        elif len(in_period) + ahead >= rule.limit:
            waits.append(
                (now + WAIT_BEHIND, f"frequency cap {rule.label}: an earlier mail goes first")
            )
    return max(waits, default=None)


def _ready(send: CappedSend, now: datetime) -> bool:
    return send.state in READY_STATES or (send.state == SendState.PENDING and send.wake_at <= now)


def _before(send: CappedSend, mine: CappedSend) -> bool:
    return (send.due_at, send.id) < (mine.due_at, mine.id)
