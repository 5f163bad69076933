"""The lifecycle rules as they are run (health/stages.py: the rules of the stages past a
customer's joined into one expression, built once per process): the furthest stage whose rule
holds wins, a rule after a true one is never evaluated, a rule that fails moves nobody and is
named in the log, only the stages past the current one count (rules never move back), and a
pinned stage is left alone, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.db.tables import customers
from orchestrator.health.stages import furthest_rule
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.journeys import standard_with
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

# `far` fails (an unknown name) for a customer who is not on the enterprise plan once a report
# exists; `middle` holds after any login. Both carry their own `or`/`if`, which the joined
# expression must keep inside each rule.
LIFECYCLE = """\
stages:
  - id: new
    label: {ja: 新規, en: New}
  - id: middle
    label: {ja: 中, en: Middle}
    when: "usage.seen('login') or false"
  - id: far
    label: {ja: 遠, en: Far}
    when: >-
      usage.seen('report_created') and (true if plan == 'enterprise' else no_such_name > 0)
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(tmp_path / "journeys", {"lifecycle.yaml": LIFECYCLE})
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def stage_of(runtime: Runtime, external_id: str) -> tuple[str | None, str | None]:
    with runtime.engine.connect() as connection:
        row = connection.execute(
            select(customers.c.stage, customers.c.stage_source).where(
                customers.c.external_id == external_id
            )
        ).one()
    return row.stage, row.stage_source


def test_the_furthest_rule_that_holds_wins_and_a_failing_one_moves_nobody(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    post_signup(client, signup_payload("big", plan="enterprise"))
    for who in ("small", "broken"):
        post_signup(client, signup_payload(who))
    assert post_events(
        client,
        event("big", "report_created"),  # far and middle hold: the furthest wins
        event("big", "login"),
        event("small", "login"),  # far is false before its failing part: middle
        event("broken", "report_created"),  # far fails: nobody moves, though middle holds
        event("broken", "login"),
    ).status_code in (200, 202)
    assert stage_of(runtime, "big") == ("far", "rules")
    assert stage_of(runtime, "small") == ("middle", "rules")
    assert stage_of(runtime, "broken") == ("new", "signup")
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stage far rule failed" in message for message in failed), failed


def test_only_the_stages_past_the_current_one_are_run_and_a_pin_holds(
    client: TestClient, runtime: Runtime
) -> None:
    for who in ("ahead", "pinned", "past_broken"):
        post_signup(client, signup_payload(who))
    set_far = {"stage": "far"}
    assert client.put("/v1/customers/ahead/stage", json=set_far, headers=AUTH).status_code == 200
    pin = {"stage": "new", "pinned": True}
    assert client.put("/v1/customers/pinned/stage", json=pin, headers=AUTH).status_code == 200
    middle = {"stage": "middle"}
    assert (
        client.put("/v1/customers/past_broken/stage", json=middle, headers=AUTH).status_code == 200
    )
    post_events(
        client,
        event("ahead", "login"),  # middle holds, behind far: never a step back
        event("pinned", "login"),
        event("past_broken", "login"),  # at middle: only far is run (false, no report yet)
    )
    assert stage_of(runtime, "ahead") == ("far", "manual")
    assert stage_of(runtime, "pinned") == ("new", "pinned")
    assert stage_of(runtime, "past_broken") == ("middle", "manual")


def test_rules_are_joined_only_when_each_stays_whole() -> None:
    rule = furthest_rule(("plan == 'a' or false", "true if plan == 'b' else false"))
    assert rule is not None
    assert [rule(plan=p) for p in ("a", "b", "c")] == [0, 1, -1]
    assert furthest_rule(("plan == 'a'", "x) or (y")) is None  # escapes its parentheses
    assert furthest_rule(("plan ==",)) is None  # does not compile alone
