"""The stage rules' usage answers taken from what the health inputs already know: only the
questions asked come through, whatever else the caller knows, and nothing is read when every
answer is known."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection

from orchestrator.usage.prefetch import Key, prefetch_rest

LOGINS: Key = ("count", "login", "14d")
REPORTS: Key = ("seen", "report_created", None)
EXTRA: Key = ("count", "support_ticket_opened", "30d")
NOW = datetime(2026, 12, 2, tzinfo=UTC)


class NoDatabase:
    """A connection that fails if anything is read (every answer is known here)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was used: {name}")


def test_known_answers_come_through_and_only_those_asked() -> None:
    known: dict[int, dict[Key, object]] = {
        1: {LOGINS: 3, REPORTS: True},  # exactly the questions
        2: {LOGINS: 0, REPORTS: False, EXTRA: 9},  # one more than asked: left out
    }
    connection = cast(Connection, NoDatabase())
    answers = prefetch_rest(connection, [1, 2], frozenset({LOGINS, REPORTS}), NOW, known)
    assert answers == {1: {LOGINS: 3, REPORTS: True}, 2: {LOGINS: 0, REPORTS: False}}
    answers[1][LOGINS] = 99
    assert known[1][LOGINS] == 3  # the caller's answers are copied, not handed out
