"""Console accounts as use cases: add, list and disable users (``stepmail users``); sign in,
look up and end sessions (the console). Each function owns its transaction."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import Engine

from orchestrator.accounts import sessions, throttle, users
from orchestrator.accounts.passwords import hash_password, verify_password
from orchestrator.accounts.roles import Role
from orchestrator.accounts.sessions import LiveSession, SessionRules
from orchestrator.accounts.throttle import ThrottleRules
from orchestrator.accounts.users import User
from orchestrator.audit.log import COMMAND_LINE, Actor, record
from orchestrator.clock import Clock
from orchestrator.errors import (
    InvalidField,
    LoginRefused,
    LoginThrottled,
    UserExists,
    UserNotFound,
)
from orchestrator.guards.mail_headers import check_plain_address

_WRONG = "the address or the password is wrong"


@dataclass(frozen=True)
class LoginRules:
    sessions: SessionRules
    throttle: ThrottleRules


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes into the cookie, never stored
    session: LiveSession


def add_user(
    engine: Engine,
    email: str,
    role: Role,
    password: str,
    *,
    hasher: PasswordHasher,
    clock: Clock,
    actor: Actor = COMMAND_LINE,
) -> User:
    address = _address(email)
    digest = hash_password(hasher, password)  # outside the transaction: it takes a while
    now = clock.now()
    with engine.begin() as connection:
        user_id = users.insert_user(connection, address, role, digest, now)
        if user_id is None:
            raise UserExists(f"{address} already has an account")
        record(connection, actor, "user.add", ("user", address), now, role=role.value)
        user = users.find_user(connection, address)
    assert user is not None and user.id == user_id
    return user


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as connection:
        return users.all_users(connection)


def active_user_emails(engine: Engine) -> list[str]:
    """Who a task can be assigned to."""
    with engine.connect() as connection:
        return users.emails_of_active_users(connection)


def disable_user(engine: Engine, email: str, *, clock: Clock, actor: Actor = COMMAND_LINE) -> User:
    """Disable the account and end its sessions at once (already disabled: no change)."""
    now = clock.now()
    with engine.begin() as connection:
        user = users.find_user(connection, email.strip())
        if user is None:
            raise UserNotFound(f"no console user {email.strip()!r}")
        if users.mark_disabled(connection, user.id, now):
            ended = sessions.end_sessions_of(connection, user.id, now)
            record(connection, actor, "user.disable", ("user", user.email), now, sessions=ended)
        disabled = users.find_user(connection, user.email)
    assert disabled is not None
    return disabled


def sign_in(
    engine: Engine,
    email: str,
    password: str,
    client_address: str,
    *,
    rules: LoginRules,
    hasher: PasswordHasher,
    clock: Clock,
) -> SignedIn:
    """A new session, or LoginRefused / LoginThrottled. Neither the message nor the time taken
    tells an unknown address, a disabled account and a wrong password apart."""
    account = email.strip().lower()[:320]
    address = client_address[:320]
    now = clock.now()
    with engine.begin() as connection:
        if throttle.throttled(connection, account, address, rules.throttle, now):
            raise LoginThrottled("too many failed sign-ins: wait a few minutes and try again")
        found = users.password_hash_of(connection, account)
    user, stored = found if found is not None else (None, None)
    matched = verify_password(hasher, stored, password)  # the same work for every case
    if not matched or user is None or not user.active:
        with engine.begin() as connection:  # committed: the refusal below must not undo it
            throttle.record_failure(connection, account, address, rules.throttle, now)
        raise LoginRefused(_WRONG)
    with engine.begin() as connection:
        throttle.forget_account_failures(connection, account)
        token = sessions.new_token()
        sessions.start_session(connection, user.id, token, now)
        record(connection, Actor(user.email, user.id), "login", ("user", user.email), now)
        opened = sessions.find_session(connection, token)
    assert opened is not None
    return SignedIn(token, opened.live(rules.sessions, now))


def current_session(
    engine: Engine, token: str, *, rules: SessionRules, clock: Clock
) -> LiveSession | None:
    """The live session the token opens, or None. A page view is a read; it writes only to
    end an expired session or, at most once a minute, to move ``last_seen_at`` on (so on
    SQLite a reader does not take the write lock every time)."""
    now = clock.now()
    with engine.connect() as connection:
        found = sessions.find_session(connection, token)
    if found is None:
        return None
    if now >= found.ends(rules):
        with engine.begin() as connection:
            sessions.end_session(connection, found.id, now)
        return None
    if sessions.needs_touch(found, now):
        with engine.begin() as connection:
            sessions.touch(connection, found.id, now)
    return found.live(rules, now)


def sign_out(engine: Engine, session: LiveSession, *, clock: Clock) -> None:
    now = clock.now()
    with engine.begin() as connection:
        sessions.end_session(connection, session.session_id, now)
        actor = Actor(session.email, session.user_id)
        record(connection, actor, "logout", ("user", session.email), now)


def _address(email: str) -> str:
    text = email.strip().lower()
    if not text or len(text) > 320:
        raise InvalidField("EMAIL", "give the user's address (at most 320 characters)")
    try:
        return check_plain_address(text)
    except ValueError as exc:
        raise InvalidField("EMAIL", str(exc)) from None
