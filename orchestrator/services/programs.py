"""The registration link of a webinar or group session in a low-touch mail.

``GET /programs/{token}`` shows the session in the customer's language and local time and
records nothing (mail scanners open every link); the page's button POSTs, which registers the
customer within the session's capacity (a ``program_registered`` event the journeys and the
health score react to, in the same transaction) and leads on to the session's own
registration page. The signed token is the capability, as for the unsubscribe page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.db.locks import lock_customers
from orchestrator.db.tables import customers, program_registrations
from orchestrator.errors import BadSurveyLink, InvalidUnsubscribeToken
from orchestrator.journeys.programs import Program, Programs, session_view
from orchestrator.recipients.page import language_of
from orchestrator.recipients.survey_links import read_program_token
from orchestrator.services.events import UsageRules, react
from orchestrator.usage.programs import register

Status = Literal["open", "registered", "already", "full", "past"]


@dataclass(frozen=True)
class ProgramRules:
    signing_secret: str
    default_locale: str
    programs: Programs | None
    usage: UsageRules


@dataclass(frozen=True)
class ProgramPage:
    lang: str
    token: str
    session: dict[str, object]
    status: Status
    registration_url: str


def show_program(
    engine: Engine, token: str, *, rules: ProgramRules, clock: Clock, reader_language: str | None
) -> ProgramPage:
    with engine.connect() as connection:
        customer_id, lang, timezone, program = _read(connection, token, rules, reader_language)
        taken = connection.execute(
            select(program_registrations.c.id).where(
                program_registrations.c.customer_id == customer_id,
                program_registrations.c.program_id == program.id,
            )
        ).first()
    status: Status = "already" if taken else "past" if program.starts_at <= clock.now() else "open"
    return _page(lang, token, timezone, program, status)


def register_program(
    engine: Engine, token: str, *, rules: ProgramRules, clock: Clock, reader_language: str | None
) -> ProgramPage:
    """Register (idempotent: a second click is ``already``); ``full`` past the capacity."""
    with Session(engine) as session, session.begin():
        connection = session.connection()
        customer_id, lang, timezone, program = _read(connection, token, rules, reader_language)
        now = clock.now()
        if program.starts_at <= now:
            return _page(lang, token, timezone, program, "past")
        lock_customers(connection, [customer_id])
        status, new = register(session, customer_id, program.id, program.capacity, now)
        react(session, new, rules.usage, now)
    return _page(lang, token, timezone, program, status)


def _page(lang: str, token: str, timezone: str, program: Program, status: Status) -> ProgramPage:
    view = session_view(program, lang, timezone, "")
    return ProgramPage(lang, token, view, status, program.registration_url)


def _read(
    connection: Connection, token: str, rules: ProgramRules, reader_language: str | None
) -> tuple[int, str, str, Program]:
    fallback = reader_language or language_of(rules.default_locale)
    try:
        public_id, program_id = read_program_token(rules.signing_secret, token)
    except InvalidUnsubscribeToken:
        raise BadSurveyLink(400, fallback) from None
    row = connection.execute(
        select(customers.c.id, customers.c.locale, customers.c.timezone).where(
            customers.c.public_id == public_id
        )
    ).first()
    program = rules.programs.get(program_id) if rules.programs else None
    if row is None or program is None:  # the customer is gone or the session was removed
        raise BadSurveyLink(404, fallback)
    return row.id, language_of(row.locale), row.timezone, program
