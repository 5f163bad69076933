"""The NPS page behind the day-30 mail's 0-10 scale.

``GET /nps/{token}?score=7`` only shows the choice (mail scanners open every link in a mail, so
a GET never records); the page's button POSTs it, with an optional comment. The POST stores the
answer (the latest wins; the same answer again is a no-op) and, in the same transaction,
reacts to its ``nps_submitted`` event like to any usage event: the health score moves at once,
a detractor opens a task (the CSM's in high touch, the team's otherwise) and journeys entered on
the answer (recovery, review request) start. The signed token is the capability, as for the
unsubscribe page: a bad one is BadSurveyLink (400 not signed by us, 404 customer gone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.db.locks import lock_customers
from orchestrator.db.tables import customers
from orchestrator.errors import BadSurveyLink, InvalidRequest, InvalidUnsubscribeToken
from orchestrator.recipients.page import language_of
from orchestrator.recipients.survey_links import read_survey_token
from orchestrator.services.events import UsageRules, react
from orchestrator.services.tasks import TaskNotifier
from orchestrator.usage.surveys import MAX_COMMENT, answer_of, record_nps

Notice = Literal["thanks"]


@dataclass(frozen=True)
class SurveyPage:
    """What the NPS page shows: the language, the link, the score chosen in the mail (or the
    one answered before), the comment answered before, and a thank-you after a POST."""

    lang: str
    token: str
    chosen: int | None
    comment: str
    answered: bool
    notice: Notice | None = None


@dataclass(frozen=True)
class SurveyRules:
    signing_secret: str
    default_locale: str
    usage: UsageRules


def refused(where: str, field: str, message: str) -> InvalidRequest:
    return InvalidRequest([{"type": "value_error", "loc": [where, field], "msg": message}])


def parse_score(value: str | None, *, required: bool, where: str = "body") -> int | None:
    """A score from the link (``where="query"``) or the form: 0-10, else a 422 naming it."""
    if value is None or value == "":
        if required:
            raise refused(where, "score", "choose a score from 0 to 10")
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 2 and int(value) <= 10):
        raise refused(where, "score", "a whole number from 0 to 10")
    return int(value)


def parse_comment(value: str | None) -> str | None:
    """The optional comment: at most MAX_COMMENT characters, no NUL; blank is none."""
    if value is None or not value.strip():
        return None
    if len(value) > MAX_COMMENT or "\x00" in value:
        raise refused("body", "comment", f"at most {MAX_COMMENT} characters, no NUL")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise refused("body", "comment", "not valid text")
    return value.strip().replace("\r\n", "\n")


def show_nps(
    engine: Engine,
    token: str,
    score: str | None,
    *,
    rules: SurveyRules,
    reader_language: str | None,
) -> SurveyPage:
    """``GET``: the page with the score chosen in the mail; records nothing."""
    chosen = parse_score(score, required=False, where="query")
    with engine.connect() as connection:
        customer_id, lang, survey = _customer(connection, token, rules, reader_language)
        before = answer_of(connection, customer_id, survey)
    if chosen is None and before is not None:
        chosen = before.score
    return SurveyPage(
        lang=lang,
        token=token,
        chosen=chosen,
        comment=(before.comment or "") if before else "",
        answered=before is not None,
    )


def answer_nps(
    engine: Engine,
    token: str,
    score: str | None,
    comment: str | None,
    *,
    rules: SurveyRules,
    clock: Clock,
    notify: TaskNotifier,
    reader_language: str | None,
) -> SurveyPage:
    """``POST``: record the answer and react to it, in one transaction; then notify tasks."""
    with Session(engine) as session, session.begin():
        connection = session.connection()
        customer_id, lang, survey = _customer(connection, token, rules, reader_language)
        value = parse_score(score, required=True)
        assert value is not None
        text = parse_comment(comment)
        lock_customers(connection, [customer_id])
        now = clock.now()
        new = record_nps(session, customer_id, survey, value, text, now)
        tasks = react(session, new, rules.usage, now)
    if tasks:
        notify(tasks)
    return SurveyPage(lang, token, value, text or "", answered=True, notice="thanks")


def _customer(
    connection: Connection, token: str, rules: SurveyRules, reader_language: str | None
) -> tuple[int, str, str]:
    """(customer id, their page language, survey id) the token names."""
    fallback = reader_language or language_of(rules.default_locale)
    try:
        public_id, survey = read_survey_token(rules.signing_secret, token)
    except InvalidUnsubscribeToken:
        raise BadSurveyLink(400, fallback) from None
    row = connection.execute(
        select(customers.c.id, customers.c.locale).where(customers.c.public_id == public_id)
    ).first()
    if row is None:
        raise BadSurveyLink(404, fallback)
    return row.id, language_of(row.locale), survey
