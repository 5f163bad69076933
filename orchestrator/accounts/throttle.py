"""The login throttle: failed sign-ins counted per account and per client address in the
store, so every API process sees the same counts.

An address that has no account is counted like one that has, and a throttled sign-in is
refused before its password is looked at: the answers never tell which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from orchestrator.db.tables import login_failures

_FAILURES = login_failures
ACCOUNT = "account"
ADDRESS = "address"


@dataclass(frozen=True)
class ThrottleRules:
    per_account: int  # failures within ``window`` after which the account's sign-ins wait
    per_address: int  # the same for one client address, whatever accounts it tries
    window: timedelta


def throttled(
    connection: Connection, account: str, address: str, rules: ThrottleRules, now: datetime
) -> bool:
    """True while either key has reached its count of failures within the window."""
    since = now - rules.window
    return _count(connection, ACCOUNT, account, since) >= rules.per_account or (
        _count(connection, ADDRESS, address, since) >= rules.per_address
    )


def record_failure(
    connection: Connection, account: str, address: str, rules: ThrottleRules, now: datetime
) -> None:
    """Count one failure for both keys, and forget their failures older than the window."""
    for kind, key in ((ACCOUNT, account), (ADDRESS, address)):
        connection.execute(
            delete(_FAILURES).where(
                _FAILURES.c.kind == kind,
                _FAILURES.c.key == key,
                _FAILURES.c.at < now - rules.window,
            )
        )
        connection.execute(insert(_FAILURES).values(kind=kind, key=key, at=now))


def forget_account_failures(connection: Connection, account: str) -> None:
    """After a successful sign-in the account starts afresh (the address does not)."""
    connection.execute(
        delete(_FAILURES).where(_FAILURES.c.kind == ACCOUNT, _FAILURES.c.key == account)
    )


def _count(connection: Connection, kind: str, key: str, since: datetime) -> int:
    query = select(func.count()).where(
        _FAILURES.c.kind == kind, _FAILURES.c.key == key, _FAILURES.c.at >= since
    )
    return int(connection.execute(query).scalar_one())
