"""Which mail gets the credit: a journey's goal, or an unsubscribe, is attributed to the last
mail sent before it within the attribution window (``ATTRIBUTION_WINDOW_DAYS``, 7).

- A **conversion** (the journey's ``goal`` event) goes to the enrollment's last mail sent at
  or before the goal event's time and no earlier than the window before it: last touch, within
  the journey. A goal with no mail in the window converts the enrollment (the journey's own
  ``converted``) but no step.
- An **unsubscribe** goes to the mail the provider's event names; for Stepmail's own link
  (one-click or the page's "stop everything"), to the customer's last mail sent in the window
  before it, whichever journey it came from.

Each marks the mail's :class:`~orchestrator.journeys.states.Engagement` bit in the caller's
transaction; the rollup job counts it under the day the mail was sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from orchestrator.db.tables import scheduled_sends
from orchestrator.journeys.states import Engagement, SendState

_SENDS = scheduled_sends


def attribute_conversion(
    connection: Connection, enrollment_id: int, at: datetime, window: timedelta
) -> int | None:
    """Mark the enrollment's last mail before ``at`` (within ``window``) as converted; its id."""
    last = (
        select(_SENDS.c.id)
        .where(
            _SENDS.c.enrollment_id == enrollment_id,
            _SENDS.c.state == SendState.SENT.value,
            _SENDS.c.sent_at <= at,
            _SENDS.c.sent_at >= at - window,
        )
        .order_by(_SENDS.c.sent_at.desc(), _SENDS.c.id.desc())
        .limit(1)
    )
    return _mark(connection, connection.execute(last).scalar(), Engagement.CONVERTED)


def attribute_unsubscribe(
    connection: Connection, customer_id: int, at: datetime, window: timedelta
) -> int | None:
    """Mark the customer's last mail before ``at`` (within ``window``) as the one they
    unsubscribed from; its id."""
    last = (
        select(_SENDS.c.id)
        .where(
            _SENDS.c.customer_id == customer_id,
            _SENDS.c.sent_at <= at,
            _SENDS.c.sent_at >= at - window,
            _SENDS.c.state == SendState.SENT.value,
        )
        .order_by(_SENDS.c.sent_at.desc(), _SENDS.c.id.desc())
        .limit(1)
    )
    return _mark(connection, connection.execute(last).scalar(), Engagement.UNSUBSCRIBED)


def _mark(connection: Connection, send_id: int | None, bit: Engagement) -> int | None:
    if send_id is not None:
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == send_id)
            .values(engagement=_SENDS.c.engagement.bitwise_or(int(bit)))
        )
    return send_id
