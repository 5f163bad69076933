"""Lifecycle rules that run as plain functions (usage/plain_conditions.py) move customers as
the sandbox would: the furthest rule that holds wins, and a customer whose rule raises is run
through the sandbox, which names the failing rule and moves nobody, while the other customers
of the batch move, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.health.stages import _plain_rules
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.services.test_lifecycle_rules import stage_of
from tests.support.environment import make_settings
from tests.support.journeys import standard_with
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events

# As test_lifecycle_rules.py's, but every rule translates: `far` raises (a string compared
# with a number) for a customer not on the enterprise plan once a report exists.
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
      usage.seen('report_created') and (true if plan == 'enterprise' else plan > 3)
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(tmp_path / "journeys", {"lifecycle.yaml": LIFECYCLE})
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def test_plain_rules_move_as_the_sandbox_and_a_raising_one_is_named(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    lifecycle = runtime.usage_rules().lifecycle
    assert lifecycle is not None and _plain_rules(lifecycle) is not None
    post_signup(client, signup_payload("big", plan="enterprise"))
    for who in ("small", "broken"):
        post_signup(client, signup_payload(who))
    assert post_events(
        client,
        event("big", "report_created"),
        event("big", "login"),
        event("small", "login"),
        event("broken", "report_created"),  # far raises: nobody moves, though middle holds
        event("broken", "login"),
    ).status_code in (200, 202)
    assert stage_of(runtime, "big") == ("far", "rules")
    assert stage_of(runtime, "small") == ("middle", "rules")
    assert stage_of(runtime, "broken") == ("new", "signup")
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stage far rule failed" in message for message in failed), failed
