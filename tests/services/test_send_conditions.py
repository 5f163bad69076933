"""A batch of sends asks the usage its conditions read in one statement (step ``when`` and
journey ``exit_when``; usage/prefetch.py), not one query per mail, and decides exactly as the
per-mail questions did; a question that cannot be answered ahead is still asked per mail."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers
from orchestrator.journeys.loader import load_journey
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import STANDARD_JOURNEYS, START, make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, post_events, send_states
from tests.support.usage import event as usage_event

LEASE = timedelta(seconds=120)
CONDITIONAL_JOURNEY = """\
id: conditional
name: Conditional
exit_when: ["usage.seen('subscription_upgraded')"]
steps:
  - id: reminder
    after: 1d
    template: onboarding/faq
    # days_since is not answered ahead: asked per mail, as before; the health score comes
    # with the customer's row, read for the batch
    when: >-
      (health.score or 0) <= 100 and health.band != 'no such band'
      and (usage.days_since('login') is none or usage.days_since('login') >= 1)
"""


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "journeys"
    shutil.copytree(STANDARD_JOURNEYS, folder)
    onboarding_vars = {"vars": load_journey(STANDARD_JOURNEYS / "onboarding.yaml").vars}
    (folder / "conditional.yaml").write_text(
        CONDITIONAL_JOURNEY + yaml.safe_dump(onboarding_vars, allow_unicode=True),
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def settings(tmp_path: Path, database_url: str, journeys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=journeys_dir)


def _customer_ids(runtime: Runtime) -> dict[str, int]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(customers.c.external_id, customers.c.id))
        return {external_id: int(cid) for external_id, cid in rows}


def _deliver_counting_usage_reads(runtime: Runtime, send_ids: Sequence[int]) -> int:
    """Delivers the rows in one batch; how many statements read ``usage_event``. None reads a
    customer's health score on its own (it comes with the batch's customer rows), and the
    rows that end without a mail are written by one statement."""
    reads: list[str] = []
    health_reads: list[str] = []
    endings: list[str] = []

    def statement(*args: Any) -> None:
        if "usage_event" in args[2]:
            reads.append(args[2])
        if args[2].startswith("SELECT customer.health_score"):
            health_reads.append(args[2])
        sql = args[2]  # a row's ending: not the sent rows' statement, not an exit's others
        ending = sql.startswith("UPDATE scheduled_send SET state=") and "sent_at" not in sql
        if ending and "WHERE scheduled_send.id =" in sql:
            endings.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", statement)
    try:
        deliver_batch(runtime.delivery_deps(), send_ids)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)
    assert health_reads == []
    assert len(endings) <= 1
    return len(reads)


def test_a_batch_asks_its_steps_usage_once_and_decides_as_before(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    names = [f"c{n}" for n in range(6)]
    for name in names:
        assert post_signup(client, signup_payload(name)).status_code == 202
    run_due(runtime)
    clock.set(START + timedelta(days=1))
    acted = names[::2]
    events = [usage_event(name, "report_created", id=f"r-{name}") for name in acted]
    assert post_events(client, *events).status_code == 202
    run_due(runtime)
    clock.set(START + timedelta(days=3, hours=4))
    due = claim_due_sends(runtime.engine, clock.now(), 100, LEASE)
    assert len(due) >= 2 * len(names)  # the FAQ and the nudge (not.seen('report_created')) each

    assert _deliver_counting_usage_reads(runtime, due) == 1  # one statement for the 6 nudges

    states, ids = send_states(runtime), _customer_ids(runtime)
    for name in names:
        nudge = states[(ids[name], "activation_nudge")]
        assert nudge == ("skipped" if name in acted else "sent"), name
        assert states[(ids[name], "faq")] == "sent"


def test_exit_conditions_are_asked_ahead_and_other_questions_per_mail(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    for name in ("upgraded", "fresh_login", "old_login", "quiet"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    run_due(runtime)
    events = [
        usage_event("upgraded", "subscription_upgraded", at=START, id="u1"),
        usage_event("old_login", "login", at=START, id="l1"),
        usage_event("fresh_login", "login", at=START + timedelta(hours=23), id="l2"),
    ]
    assert post_events(client, *events).status_code == 202
    clock.set(START + timedelta(days=1))
    due = claim_due_sends(runtime.engine, clock.now(), 100, LEASE)

    # the exits' question for every row at once, then days_since per mail that reaches the
    # step's condition (the upgraded customer's enrollment ends before it)
    assert _deliver_counting_usage_reads(runtime, due) == 1 + 3

    states, ids = send_states(runtime, "conditional"), _customer_ids(runtime)
    assert states[(ids["upgraded"], "reminder")] == "cancelled"
    assert states[(ids["fresh_login"], "reminder")] == "skipped"
    assert states[(ids["old_login"], "reminder")] == "sent"
    assert states[(ids["quiet"], "reminder")] == "sent"


def test_a_batch_whose_conditions_ask_nothing_of_usage_reads_none(
    client: TestClient, runtime: Runtime
) -> None:
    for name in ("a", "b"):
        assert post_signup(client, signup_payload(name)).status_code == 202
    due = claim_due_sends(runtime.engine, runtime.clock.now(), 100, LEASE)
    assert due
    assert _deliver_counting_usage_reads(runtime, due) == 0
