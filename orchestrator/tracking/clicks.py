"""Record one click against its send, in the caller's transaction: the click row (flagged when
it looks like a scanner's, :mod:`orchestrator.tracking.scanners`) and the send's click bits.

The send's row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so
the clicks of one mail are recorded one at a time: a scanner opening every link at once is
seen as the burst it is, and the send's ``CLICKED`` bit, recomputed from its clicks each time,
ends right however the requests interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, exists, insert, select, update

from orchestrator.db.tables import link_clicks, scheduled_sends
from orchestrator.journeys.states import Engagement
from orchestrator.tracking.scanners import ScannerPolicy, burst_partners, request_reasons

_SENDS = scheduled_sends
_CLICKS = link_clicks
_CLICK_BITS = Engagement.CLICKED | Engagement.SCANNED


@dataclass(frozen=True)
class ClickRequest:
    """One follow of a tracked link, as the redirect saw it."""

    send_id: int
    url: str
    at: datetime
    method: str = "GET"
    user_agent: str = ""
    client_ip: str | None = None
    source: str = "link"


@dataclass(frozen=True)
class RecordedClick:
    click_id: int
    suspect_reasons: tuple[str, ...]


def record_click(
    connection: Connection, click: ClickRequest, policy: ScannerPolicy
) -> RecordedClick | None:
    """Store the click and update its send's click bits; None when the send is gone."""
    send = connection.execute(
        select(_SENDS.c.sent_at, _SENDS.c.delivered_at, _SENDS.c.engagement)
        .where(_SENDS.c.id == click.send_id)
        .with_for_update()
    ).first()
    if send is None:
        return None
    reasons = request_reasons(
        policy,
        method=click.method,
        user_agent=click.user_agent,
        client_ip=click.client_ip,
        at=click.at,
        delivered_at=send.delivered_at or send.sent_at,
    )
    partners = burst_partners(policy, click.url, click.at, _recent(connection, click, policy))
    if partners:
        reasons.append("burst")
        _flag_burst(connection, partners)
    click_id = connection.execute(
        insert(_CLICKS)
        .values(
            scheduled_send_id=click.send_id,
            clicked_at=click.at,
            url=click.url,
            source=click.source[:20],
            method=click.method.upper()[:8],
            user_agent=click.user_agent[:300],
            suspect=bool(reasons),
            suspect_reasons=",".join(reasons),
        )
        .returning(_CLICKS.c.id)
    ).scalar_one()
    _update_bits(connection, click.send_id, send.engagement)
    return RecordedClick(click_id, tuple(reasons))


def _recent(
    connection: Connection, click: ClickRequest, policy: ScannerPolicy
) -> list[tuple[int, str, datetime]]:
    rows = connection.execute(
        select(_CLICKS.c.id, _CLICKS.c.url, _CLICKS.c.clicked_at).where(
            _CLICKS.c.scheduled_send_id == click.send_id,
            _CLICKS.c.clicked_at >= click.at - policy.burst,
            _CLICKS.c.clicked_at <= click.at + policy.burst,
        )
    )
    return [(row.id, row.url, row.clicked_at) for row in rows]


def _flag_burst(connection: Connection, click_ids: Sequence[int]) -> None:
    rows = connection.execute(
        select(_CLICKS.c.id, _CLICKS.c.suspect_reasons).where(_CLICKS.c.id.in_(click_ids))
    )
    for row in rows.all():
        reasons = [r for r in row.suspect_reasons.split(",") if r]
        if "burst" not in reasons:
            connection.execute(
                update(_CLICKS)
                .where(_CLICKS.c.id == row.id)
                .values(suspect=True, suspect_reasons=",".join([*reasons, "burst"])[:100])
            )


def _update_bits(connection: Connection, send_id: int, engagement: int) -> None:
    """``CLICKED`` when any click of the send is trusted, ``SCANNED`` when any is flagged."""
    of_send = _CLICKS.c.scheduled_send_id == send_id
    trusted, flagged = connection.execute(
        select(
            exists().where(of_send, _CLICKS.c.suspect.is_(False)),
            exists().where(of_send, _CLICKS.c.suspect.is_(True)),
        )
    ).one()
    bits = (Engagement.CLICKED if trusted else 0) | (Engagement.SCANNED if flagged else 0)
    value = (engagement & ~_CLICK_BITS) | bits
    if value != engagement:
        connection.execute(update(_SENDS).where(_SENDS.c.id == send_id).values(engagement=value))
