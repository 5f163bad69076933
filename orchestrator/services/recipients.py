"""What a recipient does with the link in every mail (RFC 8058 one-click unsubscribe, the
preferences page): each action checks the token and acts in one transaction.

The signed token is the capability: whoever holds the link may act on it. A bad link is
BadUnsubscribeLink (400: not signed by us; 404: its customer is gone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.analytics.attribution import attribute_unsubscribe
from orchestrator.clock import Clock
from orchestrator.db.models import Customer
from orchestrator.journeys.model import Journey
from orchestrator.recipients.page import Notice, PageState, customer_for, page_state, topics
from orchestrator.recipients.page import language_of as page_language
from orchestrator.recipients.preferences import save_preferences
from orchestrator.recipients.reasons import UNSUBSCRIBE
from orchestrator.recipients.suppression import suppress, unsuppress
from orchestrator.webhooks.outbox import emit


@dataclass(frozen=True)
class PageRules:
    """The journeys (the topics), the key that signed the links, the installation's locale,
    and how recent a mail must be to be credited with an unsubscribe."""

    journeys: Mapping[str, Journey]
    signing_secret: str
    default_locale: str
    attribution_window: timedelta = timedelta(days=7)


_Action = Callable[[Session, Customer], None]  # what a POST does, in the transaction


def show_page(
    engine: Engine,
    token: str,
    *,
    rules: PageRules,
    reader_language: str | None,
    notice: Notice | None = None,
) -> PageState:
    """``GET``: the recipient's page (with a notice after an action)."""
    return _act(engine, token, rules, reader_language, None, notice)


def unsubscribe(
    engine: Engine, token: str, *, rules: PageRules, clock: Clock, reader_language: str | None
) -> PageState:
    """One click: the address is suppressed at once, from every journey; the customer's last
    mail is credited with it (:mod:`orchestrator.analytics.attribution`)."""

    def action(session: Session, customer: Customer) -> None:
        now = clock.now()
        if suppress(session, customer.email, UNSUBSCRIBE, "one-click", now):
            assert customer.id is not None
            attribute_unsubscribe(session.connection(), customer.id, now, rules.attribution_window)
        data = {"customer_id": customer.external_id, "source": "unsubscribe_link"}
        emit(session, "recipient.unsubscribed", data, now)

    return _act(engine, token, rules, reader_language, action, "unsubscribed")


def save_topics(
    engine: Engine,
    token: str,
    chosen: frozenset[str],
    *,
    rules: PageRules,
    clock: Clock,
    reader_language: str | None,
) -> None:
    """The checked topics stay subscribed; every other topic on the page is turned off."""

    def action(session: Session, customer: Customer) -> None:
        offered = topics(session, rules.journeys, customer, page_language(customer.locale))
        choices = {topic.id: topic.id in chosen for topic in offered}
        assert customer.id is not None
        save_preferences(session.connection(), customer.id, choices, clock.now())

    _act(engine, token, rules, reader_language, action, None)


def resubscribe(
    engine: Engine, token: str, *, rules: PageRules, reader_language: str | None
) -> None:
    """Undo the recipient's own unsubscribe; a bounce or spam-report suppression stays."""

    def action(session: Session, customer: Customer) -> None:
        unsuppress(session, customer.email, reasons=[UNSUBSCRIBE])

    _act(engine, token, rules, reader_language, action, None)


def _act(
    engine: Engine,
    token: str,
    rules: PageRules,
    reader_language: str | None,
    action: _Action | None,
    notice: Notice | None,
) -> PageState:
    """Check the token, run ``action`` for its customer, read the page: one transaction."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        customer = customer_for(
            session, rules.signing_secret, token, reader_language, rules.default_locale
        )
        if action is not None:
            action(session, customer)
        return page_state(session, rules.journeys, customer, token, notice)
