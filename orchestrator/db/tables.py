"""The tables as SQLAlchemy Core objects, for the hot paths that write SQL directly."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from orchestrator.db.models import (
    Customer,
    DeliveryAttempt,
    Enrollment,
    ScheduledSend,
    Suppression,
    UsageEvent,
)

customers = cast(Table, Customer.__table__)  # type: ignore[attr-defined]
enrollments = cast(Table, Enrollment.__table__)  # type: ignore[attr-defined]
scheduled_sends = cast(Table, ScheduledSend.__table__)  # type: ignore[attr-defined]
delivery_attempts = cast(Table, DeliveryAttempt.__table__)  # type: ignore[attr-defined]
usage_events = cast(Table, UsageEvent.__table__)  # type: ignore[attr-defined]
suppressions = cast(Table, Suppression.__table__)  # type: ignore[attr-defined]
