"""The states of a scheduled send, which of them the scheduler still looks at, and what
became of a sent mail (its engagement). Pure: the store (``db.models``), the send path and
analytics import them from here."""

from __future__ import annotations

from enum import IntFlag, StrEnum


class SendState(StrEnum):
    """Where a scheduled send is in its life. Only the first five are ever picked up again."""

    PENDING = "pending"  # waiting for its due time (or a retry time)
    DISPATCHED = "dispatched"  # claimed by a scheduler tick, a message is on its way
    SENDING = "sending"  # a worker is talking to the transport right now
    STALLED = "stalled"  # its worker died mid-send; the next one decides if resending is safe
    RECONCILING = "reconciling"  # outcome unknown: waits for a provider event, then resends
    SENT = "sent"
    SKIPPED = "skipped"  # not for this customer at send time (condition, tier, suppression, exit)
    MISSED = "missed"  # overdue past the journey's grace: never sent late
    FAILED = "failed"  # permanent error or attempts exhausted
    UNKNOWN = "unknown"  # the transport may have taken it; not resent blindly
    CANCELLED = "cancelled"  # the enrollment ended before this step came due
    PAUSED = "paused"  # its enrollment is held by an operator; resuming makes it pending again
    # A CSM task the journey names is open: a human is in charge. Not in the scheduler's index;
    # closing the task releases the row (back to pending) or cancels it (send_hold records it).
    HELD = "held"


# Enrollments still in their journey: an operator's pause holds one, it does not end it.
OPEN_ENROLLMENT_STATES = ("active", "paused")


ACTIVE_SEND_STATES = (
    SendState.PENDING,
    SendState.DISPATCHED,
    SendState.SENDING,
    SendState.STALLED,
    SendState.RECONCILING,
)

# The outcomes analytics counts (:mod:`orchestrator.analytics`): a row in any other state is
# still on its way (or held) and counts nowhere yet.
COUNTED_SEND_STATES = (
    SendState.SENT,
    SendState.SKIPPED,
    SendState.MISSED,
    SendState.FAILED,
    SendState.UNKNOWN,
    SendState.CANCELLED,
)


class Engagement(IntFlag):
    """What became of a sent mail, as bits of ``scheduled_send.engagement``: a bit is set the
    first time it happens, so funnels count a mail once however often it was opened.

    Set where the fact arrives (provider events, the click redirect, a goal event, an
    unsubscribe), with ``engagement | bit`` in SQL, so concurrent writers lose nothing. Only
    ``CLICKED`` can be taken back: when a later click shows the earlier ones came from a link
    scanner (:mod:`orchestrator.tracking.scanners`).
    """

    DELIVERED = 1
    OPENED = 2
    CLICKED = 4  # at least one click not flagged as a link scanner's
    BOUNCED = 8
    UNSUBSCRIBED = 16  # the unsubscribe is attributed to this mail
    CONVERTED = 32  # the journey's goal is attributed to this mail
    SCANNED = 64  # at least one click flagged as a scanner's (kept, never trusted)
