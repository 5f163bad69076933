"""The states of a scheduled send, and which of them the scheduler still looks at. Pure: the
store (``db.models``) and the send path import them from here."""

from __future__ import annotations

from enum import StrEnum


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


ACTIVE_SEND_STATES = (
    SendState.PENDING,
    SendState.DISPATCHED,
    SendState.SENDING,
    SendState.STALLED,
    SendState.RECONCILING,
)
