"""What conditions can ask about usage, evaluated in the sandbox with data as of ``now``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.clock import FrozenClock
from orchestrator.delivery.facts import customer_facts
from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import evaluate_condition
from orchestrator.journeys.decide import condition_context
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.usage.facts import usage_context
from tests.support.environment import START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def test_conditions_read_counts_windows_times_and_properties(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("user"))
    days_ago = [20, 10, 2, 1]
    post_events(client, *[event("user", "login", START - timedelta(days=d)) for d in days_ago])
    post_events(
        client,
        event("user", "nps_submitted", START - timedelta(days=3), id="n1", properties={"score": 4}),
    )
    post_events(
        client,
        event("user", "nps_submitted", START - timedelta(days=1), id="n2", properties={"score": 9}),
    )
    post_events(client, event("user", "login", START + timedelta(days=1)))  # in the future
    with runtime.engine.connect() as connection:
        customer = customer_facts(connection, 1)
    context = condition_context(
        customer, START, usage_context(runtime.engine, 1, START - timedelta(days=5), START)
    )

    def check(source: str) -> bool:
        return evaluate_condition(source, context)

    assert check("usage.count('login') == 4")
    assert check("usage.count('login', within='14d') == 3")
    assert check("usage.seen('nps_submitted') and not usage.seen('report_created')")
    assert check("usage.property('nps_submitted', 'score') == 9")
    assert check("usage.days_since('login') == 1 and usage.days_since('x') is none")
    assert check("usage.first('login') < usage.last('login')")
    assert check("days_since_enrollment == 5 and health.band in ('tips', 'at_risk', 'upsell')")
    with pytest.raises(ConditionError):
        check("usage._engine")
    with pytest.raises(ConditionError, match="within"):
        check("usage.count('login', within='two weeks') > 0")
