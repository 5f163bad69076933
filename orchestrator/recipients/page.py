"""What the unsubscribe / preferences page shows of one recipient, read inside the caller's
transaction: who the link's token names, their topics (one per journey, no row = subscribed)
and whether their address is suppressed. The page itself is ``api/pages/unsubscribe.html``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db.models import Customer
from orchestrator.db.tables import customers, enrollments, suppressions
from orchestrator.errors import BadUnsubscribeLink, InvalidUnsubscribeToken
from orchestrator.journeys.model import Journey
from orchestrator.recipients.preferences import opted_out_topics
from orchestrator.recipients.unsubscribe_links import read_unsubscribe_token

Notice = Literal["saved", "resubscribed", "unsubscribed"]
NOTICES: tuple[Notice, ...] = ("saved", "resubscribed", "unsubscribed")


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    subscribed: bool


@dataclass(frozen=True)
class PageState:
    """Everything the page shows about one recipient."""

    lang: str
    email: str
    token: str
    topics: tuple[Topic, ...]
    suppression: str | None  # the reason, if the address is suppressed
    notice: Notice | None = None


def customer_for(
    session: Session,
    signing_secret: str,
    token: str,
    reader_language: str | None,
    default_locale: str,
) -> Customer:
    """The customer the token names; BadUnsubscribeLink 400 (not signed by us) or 404 (no such
    customer any more), its page in the reader's language (there is no customer to ask)."""
    language = reader_language or language_of(default_locale)
    try:
        public_id = read_unsubscribe_token(signing_secret, token)
    except InvalidUnsubscribeToken:
        raise BadUnsubscribeLink(400, language) from None
    customer = session.execute(
        select(Customer).where(customers.c.public_id == public_id)
    ).scalar_one_or_none()
    if customer is None:
        raise BadUnsubscribeLink(404, language)
    return customer


def page_state(
    session: Session,
    journeys: Mapping[str, Journey],
    customer: Customer,
    token: str,
    notice: Notice | None,
) -> PageState:
    suppression = session.execute(
        select(suppressions.c.reason).where(suppressions.c.email == customer.email.lower())
    ).scalar()
    return PageState(
        lang=language_of(customer.locale),
        email=customer.email,
        token=token,
        topics=topics(session, journeys, customer, language_of(customer.locale)),
        suppression=suppression,
        notice=notice,
    )


def topics(
    session: Session, journeys: Mapping[str, Journey], customer: Customer, lang: str
) -> tuple[Topic, ...]:
    """The journeys the customer is (or was) in, plus any they chose about, under the label
    the journey gives its topic (journeys marked ``topic: false`` are not offered)."""
    assert customer.id is not None
    connection = session.connection()
    off = opted_out_topics(connection, customer.id)
    enrolled = connection.execute(
        select(enrollments.c.journey_id).where(enrollments.c.customer_id == customer.id).distinct()
    ).scalars()
    ids = (set(enrolled) | off) & set(journeys)
    offered = (
        Topic(i, label, i not in off)
        for i in ids
        if (label := topic_label(journeys[i], lang)) is not None
    )
    return tuple(sorted(offered, key=lambda topic: (topic.name, topic.id)))


def topic_label(journey: Journey, lang: str) -> str | None:
    if journey.topic is False:
        return None
    if not journey.topic:
        return journey.name
    return journey.topic.get(lang) or next(iter(journey.topic.values()))


def language_of(locale: str) -> str:
    """The page's language for a locale or an ``Accept-Language`` choice: ja or en."""
    return "ja" if locale.lower().startswith("ja") else "en"
