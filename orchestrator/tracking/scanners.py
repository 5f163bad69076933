"""Which clicks were made by a mail-security scanner rather than the customer.

Gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda …) fetch every link
of a mail as it arrives, to check where it leads. Following a redirect acts for nobody, so
they are answered like anyone; but their clicks are not the customer's and must not count.
A click is flagged (kept, with why, and never counted as a unique click) when:

- ``head``: it is a HEAD request (browsers follow links with GET);
- ``agent``: its User-Agent is empty or names a scanner, a library or a headless browser;
- ``early``: it came within ``early`` (``CLICK_SCANNER_SECONDS``, 30 s) of the mail's
  delivery (the provider's delivery time, else when Stepmail sent it);
- ``network``: its address is in ``CLICK_SCANNER_NETWORKS`` (data-centre ranges you list);
- ``burst``: another link of the same mail was followed within ``burst`` (one second): a
  person clicks one link at a time. Both clicks are flagged, the earlier one afterwards.

Pure: the caller reads the times and the other clicks (:mod:`orchestrator.tracking.clicks`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.guards.networks import IpNetwork, in_networks

# Lower-case fragments of User-Agent strings that no person's browser sends.
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|trend ?micro|forcepoint|sophos"
    r"|fortinet|fortiguard|ironport|cisco|zscaler|check ?point|avanan|agari|abnormal"
    r"|safelinks|ms-office|msoffice|bingpreview|google-safety|yahoo! slurp|linkcheck"
    r"|bot\b|bot/|crawler|spider|scanner|preview|headless|phantomjs|python|curl/|wget/"
    r"|go-http-client|java/|okhttp|libwww|httpclient|axios|node-fetch|aiohttp"
)


@dataclass(frozen=True)
class ScannerPolicy:
    """The thresholds, from the settings."""

    early: timedelta = timedelta(seconds=30)  # CLICK_SCANNER_SECONDS
    burst: timedelta = timedelta(seconds=1)
    networks: tuple[IpNetwork, ...] = field(default_factory=tuple)  # CLICK_SCANNER_NETWORKS


def request_reasons(
    policy: ScannerPolicy,
    *,
    method: str,
    user_agent: str,
    client_ip: str | None,
    at: datetime,
    delivered_at: datetime | None,
) -> list[str]:
    """Why this request looks like a scanner's, from the request and the send alone."""
    reasons = []
    if method.upper() == "HEAD":
        reasons.append("head")
    if scanner_agent(user_agent):
        reasons.append("agent")
    if delivered_at is not None and at - delivered_at < policy.early:
        reasons.append("early")
    if in_networks(client_ip, policy.networks):
        reasons.append("network")
    return reasons


def scanner_agent(user_agent: str) -> bool:
    """An empty User-Agent, or one that names a scanner, a library or a headless browser."""
    return not user_agent.strip() or SCANNER_AGENTS.search(user_agent.lower()) is not None


def burst_partners(
    policy: ScannerPolicy, url: str, at: datetime, others: Iterable[tuple[int, str, datetime]]
) -> list[int]:
    """The ids of the send's other clicks (id, url, time) on a *different* link within
    ``burst`` of this one: with this click, they are a scanner walking the mail's links."""
    return [
        click_id
        for click_id, other_url, other_at in others
        if other_url != url and abs(other_at - at) <= policy.burst
    ]
