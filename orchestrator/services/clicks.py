"""A reader follows a link in a mail: ``GET /r/<token>`` checks the signature (no database),
answers with the redirect, and then records the click (one transaction).

An unsigned or changed token is BadClickLink: a small page, never a redirect. Recording runs
after the answer and never fails it: a click that cannot be stored is logged, and the reader
still gets where the link goes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.clock import Clock
from orchestrator.guards.networks import parse_networks
from orchestrator.tracking.clicks import ClickRequest, RecordedClick
from orchestrator.tracking.clicks import record_click as store_click
from orchestrator.tracking.links import ClickLink, click_key, read_click
from orchestrator.tracking.scanners import ScannerPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClickRules:
    """The key that signed the links (the unsubscribe signing secret's) and the scanner rules."""

    signing_secret: str
    policy: ScannerPolicy


def scanner_policy(early_seconds: int, networks: str) -> ScannerPolicy:
    """``CLICK_SCANNER_SECONDS`` and ``CLICK_SCANNER_NETWORKS`` as a policy."""
    return ScannerPolicy(early=timedelta(seconds=early_seconds), networks=parse_networks(networks))


def read_click_link(token: str, *, rules: ClickRules) -> ClickLink:
    """Where the link goes and which send it is in; BadClickLink unless we signed it."""
    return read_click(click_key(rules.signing_secret), token)


def record_click(
    engine: Engine,
    link: ClickLink,
    *,
    method: str,
    user_agent: str,
    client_ip: str | None,
    rules: ClickRules,
    clock: Clock,
) -> RecordedClick | None:
    """Store the click and its send's click bits; None when it could not be (logged)."""
    click = ClickRequest(
        send_id=link.send_id,
        url=link.url,
        at=clock.now(),
        method=method,
        user_agent=user_agent,
        client_ip=client_ip,
    )
    try:
        with engine.begin() as connection:
            return store_click(connection, click, rules.policy)
    except SQLAlchemyError:
        log.exception("a click on send %d could not be recorded", link.send_id)
        return None
