"""What the send path needs of the settings, as plain values: built by the runtime from
``Settings`` (so nothing on the send path reads settings itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from orchestrator.delivery.pacing import PacingRules


@dataclass(frozen=True)
class LinkRules:
    """How a mail's unsubscribe link and ``List-Unsubscribe`` header are made, and whether its
    links go through signed redirect links (``CLICK_TRACKING``; a journey can say
    ``track_clicks: false``)."""

    public_base_url: str
    signing_secret: str
    unsubscribe_mailto: str | None = None
    click_tracking: bool = False


@dataclass(frozen=True)
class DeliveryRules:
    lease: timedelta  # STEPMAIL_SEND_LEASE
    max_attempts: int  # STEPMAIL_MAX_SEND_ATTEMPTS
    reconciliation_window: timedelta  # STEPMAIL_RECONCILIATION_WINDOW
    links: LinkRules
    pacing: PacingRules
