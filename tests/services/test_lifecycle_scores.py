"""The stage rules of an event batch read each customer as the batch's lock read it, with the
score the batch just computed (not read again: health/stages.py ``facts``), so a rule on the
health score moves a customer on the event that gave the score, on SQLite and PostgreSQL."""

from __future__ import annotations

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

LIFECYCLE = """\
stages:
  - id: new
    label: {ja: 新規, en: New}
  - id: scored
    label: {ja: 採点済, en: Scored}
    when: "health.score != none and plan == 'pro'"
  - id: never
    label: {ja: 無, en: Never}
    when: "(health.score or 0) > 100"
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(tmp_path / "journeys", {"lifecycle.yaml": LIFECYCLE})
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def test_a_rule_on_the_score_reads_the_score_the_batch_just_gave(
    client: TestClient, runtime: Runtime
) -> None:
    lifecycle = runtime.usage_rules().lifecycle
    assert lifecycle is not None and _plain_rules(lifecycle) is not None
    post_signup(client, signup_payload("pro", plan="pro"))
    post_signup(client, signup_payload("free", plan="free"))
    assert stage_of(runtime, "pro") == ("new", "signup")
    # Unscored until now: the lock reads no score; the rescoring of this batch gives one.
    response = post_events(client, event("pro", "login"), event("free", "login"))
    assert response.status_code in (200, 202)
    assert stage_of(runtime, "pro") == ("scored", "rules")
    assert stage_of(runtime, "free") == ("new", "signup")  # its plan, as locked, says no
