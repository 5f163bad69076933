"""Console accounts: users, passwords, sessions that end when they should, and a sign-in
throttle that holds across processes and never tells which accounts exist."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from orchestrator.accounts.roles import Permission, Role, can, permissions
from orchestrator.accounts.sessions import SessionRules
from orchestrator.accounts.throttle import ThrottleRules
from orchestrator.clock import FrozenClock
from orchestrator.db.engine import make_engine
from orchestrator.db.tables import audit_log, console_sessions, console_users
from orchestrator.errors import InvalidField, LoginRefused, LoginThrottled, UserExists
from orchestrator.services import accounts
from orchestrator.services.accounts import LoginRules

PASSWORD = "correct horse battery staple"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id, test-cheap
RULES = LoginRules(
    SessionRules(idle=timedelta(minutes=30), lifetime=timedelta(hours=12)),
    ThrottleRules(per_account=3, per_address=5, window=timedelta(minutes=15)),
)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return make_engine(database_url)


def add(engine: Engine, clock: FrozenClock, email: str, role: Role = Role.VIEWER) -> None:
    accounts.add_user(engine, email, role, PASSWORD, hasher=FAST, clock=clock)


def sign_in(
    engine: Engine,
    clock: FrozenClock,
    email: str,
    password: str = PASSWORD,
    address: str = "192.0.2.1",
) -> accounts.SignedIn:
    return accounts.sign_in(engine, email, password, address, rules=RULES, hasher=FAST, clock=clock)


def test_each_role_includes_the_one_below() -> None:
    assert permissions(Role.VIEWER) == {Permission.READ}
    assert permissions(Role.VIEWER) < permissions(Role.CSM) < permissions(Role.EDITOR)
    assert permissions(Role.EDITOR) < permissions(Role.ADMIN) == set(Permission)
    assert can(Role.CSM, Permission.WORK_TASKS) and not can(Role.CSM, Permission.SEND_TESTS)
    assert can(Role.EDITOR, Permission.CONTROL_ENROLLMENTS)
    assert not can(Role.EDITOR, Permission.MANAGE_SUPPRESSIONS)


def test_users_are_added_listed_and_disabled(engine: Engine, clock: FrozenClock) -> None:
    added = accounts.add_user(
        engine, " Ops@Acme.Example ", Role.ADMIN, PASSWORD, hasher=FAST, clock=clock
    )
    assert (added.email, added.role, added.active) == ("ops@acme.example", Role.ADMIN, True)
    with pytest.raises(UserExists):
        add(engine, clock, "OPS@acme.example")
    with pytest.raises(InvalidField, match="password: must have at least 12"):
        accounts.add_user(engine, "x@acme.example", Role.ADMIN, "short", hasher=FAST, clock=clock)
    with pytest.raises(InvalidField, match="EMAIL"):
        accounts.add_user(engine, "not an address", Role.ADMIN, PASSWORD, hasher=FAST, clock=clock)
    with engine.connect() as connection:
        stored = connection.execute(select(console_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    clock.advance(timedelta(minutes=1))
    disabled = accounts.disable_user(engine, "ops@acme.example", clock=clock)
    assert disabled.disabled_at == clock.now()
    assert [u.email for u in accounts.list_users(engine)] == ["ops@acme.example"]
    with engine.connect() as connection:
        actions = connection.execute(select(audit_log.c.actor, audit_log.c.action)).all()
    assert [tuple(a) for a in actions] == [("cli", "user.add"), ("cli", "user.disable")]


def test_a_wrong_password_an_unknown_address_and_a_disabled_account_look_alike(
    engine: Engine, clock: FrozenClock
) -> None:
    add(engine, clock, "on@acme.example")
    add(engine, clock, "off@acme.example")
    accounts.disable_user(engine, "off@acme.example", clock=clock)
    messages: set[str] = set()
    for email, password in [
        ("on@acme.example", "wrong password!"),
        ("nobody@acme.example", PASSWORD),
        ("off@acme.example", PASSWORD),
    ]:
        with pytest.raises(LoginRefused) as refused:
            sign_in(engine, clock, email, password, address=f"198.51.100.{len(messages)}")
        messages.add(str(refused.value))
    assert messages == {"the address or the password is wrong"}
    signed = sign_in(engine, clock, "ON@acme.example")
    assert signed.session.email == "on@acme.example" and signed.session.role is Role.VIEWER


def test_the_throttle_counts_per_account_and_per_address_across_processes(
    engine: Engine, clock: FrozenClock, database_url: str
) -> None:
    add(engine, clock, "a@acme.example")
    add(engine, clock, "b@acme.example")
    other_process = make_engine(database_url)  # its own pool: what another API process sees
    for _ in range(RULES.throttle.per_account):
        with pytest.raises(LoginRefused):
            sign_in(other_process, clock, "a@acme.example", "wrong password!")
    with pytest.raises(LoginThrottled):
        sign_in(engine, clock, "a@acme.example")  # the right password, too many failures
    with pytest.raises(LoginThrottled):
        sign_in(engine, clock, "a@acme.example", address="203.0.113.9")  # from anywhere
    sign_in(engine, clock, "b@acme.example")  # another account from that address: fine

    for index in range(RULES.throttle.per_address - RULES.throttle.per_account):
        with pytest.raises(LoginRefused):
            sign_in(engine, clock, f"guess{index}@acme.example", "wrong password!")
    with pytest.raises(LoginThrottled):
        sign_in(engine, clock, "b@acme.example")  # the address is throttled for everyone
    sign_in(engine, clock, "b@acme.example", address="203.0.113.9")

    clock.advance(RULES.throttle.window + timedelta(seconds=1))
    sign_in(engine, clock, "a@acme.example")  # the window passed
    other_process.dispose()


def test_a_session_ends_when_idle_at_its_lifetime_at_sign_out_and_when_disabled(
    engine: Engine, clock: FrozenClock
) -> None:
    add(engine, clock, "s@acme.example")
    rules = RULES.sessions

    def live(token: str) -> bool:
        return accounts.current_session(engine, token, rules=rules, clock=clock) is not None

    idle = sign_in(engine, clock, "s@acme.example").token
    clock.advance(rules.idle - timedelta(seconds=1))
    assert live(idle)  # and touched: the idle time starts again
    clock.advance(rules.idle - timedelta(seconds=1))
    assert live(idle)
    clock.advance(rules.idle)
    assert not live(idle)

    busy = sign_in(engine, clock, "s@acme.example").token
    started = clock.now()
    while clock.now() < started + rules.lifetime - timedelta(minutes=20):
        clock.advance(timedelta(minutes=20))
        assert live(busy)
    clock.set(started + rules.lifetime)
    assert not live(busy)  # however busy

    signed = sign_in(engine, clock, "s@acme.example")
    accounts.sign_out(engine, signed.session, clock=clock)
    assert not live(signed.token)

    tokens = [sign_in(engine, clock, "s@acme.example").token for _ in range(2)]
    accounts.disable_user(engine, "s@acme.example", clock=clock)
    assert not any(live(token) for token in tokens)
    with engine.connect() as connection:
        hashes = connection.execute(select(console_sessions.c.token_hash)).scalars().all()
    assert not set(tokens) & set(hashes)  # only hashes are stored


def test_the_console_key_is_never_a_public_value(tmp_path: Path) -> None:
    from orchestrator.settings import DEVELOPMENT_SIGNUP_HOOK_SECRET, load_settings

    own = load_settings(console_secret="a-console-secret-of-ours", signup_hook_secret="hook-x")
    derived = load_settings(signup_hook_secret="a-hook-secret-of-ours")
    public = load_settings(signup_hook_secret=DEVELOPMENT_SIGNUP_HOOK_SECRET)
    unset = load_settings()
    assert own.console_key() == "console:a-console-secret-of-ours"
    assert derived.console_key() == "console:a-hook-secret-of-ours"
    assert DEVELOPMENT_SIGNUP_HOOK_SECRET not in public.console_key()
    assert public.console_key() == unset.console_key()  # a key made for this process
    assert derived.console_key() != derived.signing_secret()  # not the unsubscribe key
