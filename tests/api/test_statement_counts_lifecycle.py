"""The statement counts of the hot paths with the shipped journeys, whose lifecycle stages
(journeys/lifecycle.yaml) are evaluated on every event: what that costs, counted and pinned
beside tests/api/test_statement_counts.py (whose test journeys have no lifecycle)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.api.test_statement_counts import (  # the first: autouse here too
    _ask_subscribers_every_time,  # noqa: F401
    batch,
    counting,
)
from tests.support.environment import ROOT, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, post_events
from tests.support.usage import event as usage_event


def customer_reads(statements: list[str]) -> list[str]:
    """The statements that read customer rows (the lock, and any read after it; each begins
    with the columns it reads, and a statement is kept only to its first 120 characters)."""
    return [s for s in statements if s.startswith("SELECT customer.")]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=ROOT / "journeys")


def test_a_new_signup_also_records_its_first_stage(client: TestClient, runtime: Runtime) -> None:
    with counting(runtime) as tally:
        assert post_signup(client, signup_payload("acme")).status_code == 202
    # the customer (its first stage in the same insert), its consent, the stage's history
    # row, then as without a lifecycle: the versions, the enrollment and its rows
    assert len(tally.statements) <= 6, tally.statements
    assert tally.commits == 1


def test_a_single_event_also_evaluates_the_stage_rules(
    client: TestClient, runtime: Runtime
) -> None:
    assert post_signup(client, signup_payload("acme")).status_code == 202
    assert post_events(client, usage_event("acme", "login", id="first")).status_code == 202
    with counting(runtime) as tally:
        response = post_events(client, usage_event("acme", "login", id="second"))
    assert response.json()["stored"] == 1
    # the statements of tests/api/test_statement_counts.py, then one statement answering
    # every usage question of the rules (usage/prefetch.py; asked one by one, they were five
    # more). The rules read the customer as the lock read it, with its new score: no second
    # read of the customer (there was one until session 13).
    postgres = runtime.engine.dialect.name == "postgresql"
    assert len(tally.statements) <= (7 if postgres else 8), tally.statements
    assert len(customer_reads(tally.statements)) == 1, tally.statements
    assert tally.commits == 1


def test_a_batch_evaluates_the_stage_rules_in_one_statement_whatever_its_size(
    client: TestClient, runtime: Runtime
) -> None:
    for n in range(40):
        assert post_signup(client, signup_payload(f"c{n}")).status_code == 202
    with counting(runtime) as small:
        assert post_events(client, *batch(4, 6, "small")).status_code == 202
    with counting(runtime) as large:
        response = post_events(client, *batch(40, 300, "large"))
    assert response.json()["stored"] == 300
    # as without a lifecycle, then the customers' usage answers: at most one statement for 4
    # customers or 40 (asked one by one: five per customer), none when the rules are settled
    # by what is known (the small batch's four customers, with a login or two each: see
    # health/stages.py); the customers as locked
    postgres = runtime.engine.dialect.name == "postgresql"
    assert len(large.statements) <= (9 if postgres else 10), large.statements
    assert len(customer_reads(large.statements)) == 1, large.statements
    assert [len(usage_reads(small.statements)), len(usage_reads(large.statements))] == [0, 1]
    others = [len(s) - len(usage_reads(s)) for s in (small.statements, large.statements)]
    assert others[0] == others[1], (small.statements, large.statements)
    assert large.commits == 1


def usage_reads(statements: list[str]) -> list[str]:
    """The stage rules' usage statement (usage/prefetch.py: its answers are numbered
    ``question``)."""
    return [s for s in statements if "question" in s]
