"""One-click unsubscribe (RFC 8058) and the preferences page behind every mail's link.

``POST /unsubscribe/{token}`` suppresses the address at once, with no cookie, login or form
field required (mailbox providers post ``List-Unsubscribe=One-Click``; the page's own button
posts the same). ``GET`` shows a page in the customer's language: choose topics (one per
journey), unsubscribe from everything, or resubscribe after an unsubscribe of one's own.

The signed token in the path is the capability: whoever holds the link may act on it, and no
cookie or session exists that another site could ride on, so the forms need no CSRF token. The
pages are autoescaped, work without JavaScript, and are served ``no-store``/``no-referrer`` so
the link does not leak into caches or to other sites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import Responses, html_answers, json_answers_beside_pages
from orchestrator.api.routing import StrictRoute
from orchestrator.db.models import Customer
from orchestrator.db.tables import customers, enrollments, suppressions
from orchestrator.errors import BadUnsubscribeLink, InvalidUnsubscribeToken
from orchestrator.journeys.model import Journey
from orchestrator.recipients.preferences import opted_out_topics, save_preferences
from orchestrator.recipients.reasons import UNSUBSCRIBE
from orchestrator.recipients.suppression import suppress, unsuppress
from orchestrator.recipients.unsubscribe_links import read_unsubscribe_token
from orchestrator.runtime import Runtime

router = APIRouter(route_class=StrictRoute)
_PAGES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "pages")),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
Notice = Literal["saved", "resubscribed", "unsubscribed"]
_Action = Callable[[Session, Runtime, Customer], None]  # what a POST does, in the transaction
_NOTICES: tuple[Notice, ...] = ("saved", "resubscribed", "unsubscribed")


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


_BAD_LINK = html_answers(
    s400="The link was not signed by us (a page says so)",
    s404="The link's customer no longer exists (a page says so)",
)
_FORM = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"topic": {"type": "array", "items": {"type": "string"}}},
                }
            }
        }
    }
}
_BACK_TO_THE_PAGE: Responses = {303: {"description": "Done: back to the page, with a notice"}}


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(422)},
)
async def preferences_page(
    token: str, request: Request, runtime: RuntimeDep, done: str | None = None
) -> Response:
    notice = done if done in _NOTICES else None
    return await run_in_threadpool(_act, runtime, token, None, notice, _reader_language(request))


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses={**_BAD_LINK, **json_answers_beside_pages(413, 422)},
)
async def unsubscribe_now(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """One click: works for the mailbox provider's POST (any body) and the page's button."""
    language = _reader_language(request)
    return await run_in_threadpool(_act, runtime, token, _unsubscribe, "unsubscribed", language)


@router.post(
    "/unsubscribe/{token}/topics",
    response_class=HTMLResponse,
    responses={**_BACK_TO_THE_PAGE, **_BAD_LINK, **json_answers_beside_pages(413, 422)},
    openapi_extra=_FORM,
)
async def choose_topics(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """The checked topics stay subscribed; every other topic on the page is turned off."""
    body = await request.body()  # a few journey ids; capped by api/body_limit.py
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    chosen = frozenset(form.get("topic", []))

    def save(session: Session, runtime: Runtime, customer: Customer) -> None:
        topics = _topics(session, runtime, customer, _language(customer.locale))
        choices = {topic.id: topic.id in chosen for topic in topics}
        assert customer.id is not None
        save_preferences(session.connection(), customer.id, choices, runtime.clock.now())

    await run_in_threadpool(_act, runtime, token, save, None, _reader_language(request))
    return RedirectResponse(f"/unsubscribe/{token}?done=saved", status_code=303)


@router.post(
    "/unsubscribe/{token}/resubscribe",
    response_class=HTMLResponse,
    responses={**_BACK_TO_THE_PAGE, **_BAD_LINK, **json_answers_beside_pages(413, 422)},
)
async def resubscribe(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """Undo the recipient's own unsubscribe; a bounce or spam-report suppression stays."""
    language = _reader_language(request)
    await run_in_threadpool(_act, runtime, token, _resubscribe, None, language)
    return RedirectResponse(f"/unsubscribe/{token}?done=resubscribed", status_code=303)


def _unsubscribe(session: Session, runtime: Runtime, customer: Customer) -> None:
    suppress(session, customer.email, UNSUBSCRIBE, "one-click", runtime.clock.now())


def _resubscribe(session: Session, runtime: Runtime, customer: Customer) -> None:
    unsuppress(session, customer.email, reasons=[UNSUBSCRIBE])


def _act(
    runtime: Runtime,
    token: str,
    action: _Action | None,
    notice: Notice | None,
    reader_language: str | None,
) -> Response:
    """Check the token, run ``action`` for its customer in one transaction, show the page.

    A bad link raises BadUnsubscribeLink, whose page (:func:`bad_link_page`) speaks the
    browser's language: there is no customer to ask."""
    with Session(runtime.engine, expire_on_commit=False) as session, session.begin():
        customer = _customer_for(session, runtime, token, reader_language)
        if action is not None:
            action(session, runtime, customer)
        state = _state(session, runtime, customer, token, notice)
    html = _PAGES.get_template("unsubscribe.html").render(
        page=state, sender=runtime.settings.sender_name, contact=runtime.settings.sender_contact
    )
    return HTMLResponse(html, headers=_HEADERS)


def bad_link_page(problem: BadUnsubscribeLink, contact: str) -> HTMLResponse:
    """The page a bad link gets (400: not signed by us; 404: its customer is gone)."""
    html = _PAGES.get_template("unsubscribe_error.html").render(
        lang=problem.lang, status=problem.http_status, contact=contact
    )
    return HTMLResponse(html, status_code=problem.http_status, headers=_HEADERS)


def _customer_for(
    session: Session, runtime: Runtime, token: str, reader_language: str | None
) -> Customer:
    language = reader_language or _language(runtime.settings.default_locale)
    try:
        public_id = read_unsubscribe_token(runtime.settings.signing_secret(), token)
    except InvalidUnsubscribeToken:
        raise BadUnsubscribeLink(400, language) from None
    customer = session.execute(
        select(Customer).where(customers.c.public_id == public_id)
    ).scalar_one_or_none()
    if customer is None:
        raise BadUnsubscribeLink(404, language)
    return customer


def _state(
    session: Session, runtime: Runtime, customer: Customer, token: str, notice: Notice | None
) -> PageState:
    suppression = session.execute(
        select(suppressions.c.reason).where(suppressions.c.email == customer.email.lower())
    ).scalar()
    return PageState(
        lang=_language(customer.locale),
        email=customer.email,
        token=token,
        topics=_topics(session, runtime, customer, _language(customer.locale)),
        suppression=suppression,
        notice=notice,
    )


def _topics(session: Session, runtime: Runtime, customer: Customer, lang: str) -> tuple[Topic, ...]:
    """The journeys the customer is (or was) in, plus any they chose about, under the label
    the journey gives its topic (journeys marked ``topic: false`` are not offered)."""
    assert customer.id is not None
    connection = session.connection()
    off = opted_out_topics(connection, customer.id)
    enrolled = connection.execute(
        select(enrollments.c.journey_id).where(enrollments.c.customer_id == customer.id).distinct()
    ).scalars()
    ids = (set(enrolled) | off) & set(runtime.journeys)
    topics = (
        Topic(i, label, i not in off)
        for i in ids
        if (label := _topic_label(runtime.journeys[i], lang)) is not None
    )
    return tuple(sorted(topics, key=lambda topic: (topic.name, topic.id)))


def _topic_label(journey: Journey, lang: str) -> str | None:
    if journey.topic is False:
        return None
    if not journey.topic:
        return journey.name
    return journey.topic.get(lang) or next(iter(journey.topic.values()))


def _language(locale: str) -> str:
    return "ja" if locale.lower().startswith("ja") else "en"


def _reader_language(request: Request) -> str | None:
    """The browser's first ``Accept-Language`` choice, as ja or en; None without the header."""
    header = request.headers.get("accept-language", "").strip()
    return _language(header.split(",")[0].strip()) if header else None
