"""How many SQL statements and transactions each hot API path costs: counted, never timed.

The signup hook and the events endpoint are the service's way in; each round trip to the
database is latency under load. These pin the counts (on both databases; SQLite's
``BEGIN IMMEDIATE`` is not counted), so a change that adds a query per request fails here and
has to say why. A batch costs what a single event costs: its statements do not grow with the
number of events or customers in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.webhooks import outbox
from tests.support.environment import make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, post_events
from tests.support.usage import event as usage_event


@pytest.fixture(autouse=True)
def _ask_subscribers_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted as if every emit asked for the webhook endpoints: the per-process memory of
    "nobody subscribes" (webhooks/outbox.py, pinned in tests/services/test_webhook_quiet.py)
    would make a count depend on which request asked first, and when."""
    monkeypatch.setattr(outbox, "QUIET_FOR", 0.0)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    commits: int = 0


@contextmanager
def counting(runtime: Runtime) -> Iterator[Tally]:
    tally = Tally()

    def statement(_c: Any, _cur: Any, text: str, *_args: Any) -> None:
        if text.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE"):
            tally.statements.append(" ".join(text.split())[:120])

    def commit(_c: Any) -> None:
        tally.commits += 1

    event.listen(runtime.engine, "before_cursor_execute", statement)
    event.listen(runtime.engine, "commit", commit)
    try:
        yield tally
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)
        event.remove(runtime.engine, "commit", commit)


def test_a_new_signup_is_five_statements_in_one_transaction(
    client: TestClient, runtime: Runtime
) -> None:
    with counting(runtime) as tally:
        assert post_signup(client, signup_payload("acme")).status_code == 202
    # the customer, its consent, the signup journeys' current versions (FOR SHARE on
    # PostgreSQL: a signup during a journey change starts on the new version), the onboarding
    # enrollment and its rows
    assert len(tally.statements) <= 5, tally.statements
    assert tally.commits == 1


def test_a_repeated_signup_reads_back_in_one_transaction(
    client: TestClient, runtime: Runtime
) -> None:
    assert post_signup(client, signup_payload("acme")).status_code == 202
    with counting(runtime) as tally:
        assert post_signup(client, signup_payload("acme")).json()["created"] is False
    # as a new one, with look-ups of the customer and the enrollment instead of their inserts'
    # answers (the versions read included)
    assert len(tally.statements) <= 6, tally.statements
    assert tally.commits == 1


def test_a_single_event_is_stored_and_scored_in_six_statements(
    client: TestClient, runtime: Runtime
) -> None:
    assert post_signup(client, signup_payload("acme")).status_code == 202
    assert post_events(client, usage_event("acme", "login", id="first")).status_code == 202
    with counting(runtime) as tally:
        response = post_events(client, usage_event("acme", "login", id="second"))
    assert response.json()["stored"] == 1 and response.json()["task_ids"] == []
    # customer under lock, the event, the journeys' current versions (FOR SHARE: a journey
    # change being applied is waited for) and the customer's open enrollments (one may follow
    # an older version, whose rules only it tells: so read even for an event the current
    # journeys do not name), the score's inputs, then its history row and the customer's
    # score: one statement on PostgreSQL, two on SQLite
    postgres = runtime.engine.dialect.name == "postgresql"
    assert len(tally.statements) <= (6 if postgres else 7), tally.statements
    assert tally.commits == 1


def test_a_duplicate_event_costs_two_statements(client: TestClient, runtime: Runtime) -> None:
    assert post_signup(client, signup_payload("acme")).status_code == 202
    assert post_events(client, usage_event("acme", "login", id="once")).status_code == 202
    with counting(runtime) as tally:
        response = post_events(client, usage_event("acme", "login", id="once"))
    assert response.json()["duplicates"] == 1
    assert len(tally.statements) <= 2, tally.statements
    assert tally.commits == 1


def batch(customers: int, size: int, tag: str) -> list[dict[str, Any]]:
    """Logins and report_created (an event step of onboarding) spread over the customers."""
    names = ("login", "report_created", "login")
    return [usage_event(f"c{k % customers}", names[k % 3], id=f"{tag}-{k}") for k in range(size)]


def test_a_batch_costs_the_same_statements_whatever_its_size(
    client: TestClient, runtime: Runtime
) -> None:
    for n in range(40):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    with counting(runtime) as small:
        assert post_events(client, *batch(4, 6, "small")).status_code == 202
    with counting(runtime) as large:
        response = post_events(client, *batch(40, 300, "large"))
    assert response.json()["stored"] == 300
    # customers, events, the journeys' current versions, enrollments, the event steps' rows,
    # inputs, history and scores, and the webhook endpoints subscribed to a band change
    # (health.band_changed: some scores change band)
    postgres = runtime.engine.dialect.name == "postgresql"  # SQLite: history and scores apart
    assert len(large.statements) <= (8 if postgres else 9), large.statements
    assert len(large.statements) == len(small.statements), (small.statements, large.statements)
    assert large.commits == 1
