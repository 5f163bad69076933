"""Tasks follow the customer: a move down a tier tells the CSM and tidies what no longer
applies, and a task past its due date is escalated to the team once."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime
from orchestrator.services.tasks import escalate_overdue_tasks
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events

CSM = {"csm_name": "Hanako Sato", "csm_email": "hanako@vendor.example"}
TEAM = "cs-team@vendor.example"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY, csm_team_email=TEAM)


def task_mails(settings: Settings) -> list[tuple[str, str]]:
    """(To, Subject) of every internal mail in the outbox."""
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in outbox_files(settings)
    ]
    return sorted(
        (str(m["To"]), str(m["Subject"]))
        for m in mails
        if str(m["Subject"]).startswith("[Stepmail]")
    )


def tasks_by_kind(client: TestClient, status: str = "all") -> dict[str, dict[str, object]]:
    listed = client.get(f"/v1/tasks?status={status}", headers=AUTH).json()["items"]
    return {t["kind"]: t for t in listed}


def test_a_move_down_tells_the_csm_closes_the_introduction_and_hands_other_tasks_to_the_team(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    post_signup(client, signup_payload("acct", **CSM))  # low touch, with a CSM on record
    assert (
        client.patch("/v1/customers/acct", json={"tier": "high"}, headers=AUTH).status_code == 200
    )
    post_events(client, event("acct", "nps_submitted", properties={"score": 2}))
    before = tasks_by_kind(client)
    assert before["new_high_touch"]["assignee"] == CSM["csm_email"]
    assert before["nps_detractor"]["assignee"] == CSM["csm_email"]

    moved = client.patch("/v1/customers/acct", json={"tier": "low"}, headers=AUTH)
    assert moved.status_code == 200 and moved.json()["tier"] == "low"

    after = tasks_by_kind(client)
    intro, detractor, notice = (
        after["new_high_touch"],
        after["nps_detractor"],
        after["tier_moved_down"],
    )
    assert (
        intro["status"] == "closed" and intro["closed_reason"] == "the customer moved to low touch"
    )
    assert detractor["status"] == "open" and detractor["assignee"] is None  # the team queue
    assert notice["status"] == "open" and notice["assignee"] == CSM["csm_email"]
    assert f"closed #{intro['id']}" in str(notice["reason"])
    assert f"handed #{detractor['id']} to the team queue" in str(notice["reason"])
    mails = task_mails(settings)
    assert (
        CSM["csm_email"],
        f"[Stepmail] Task #{notice['id']}: tier_moved_down - 株式会社サンプル",
    ) in mails
    assert (TEAM, f"[Stepmail] Task #{detractor['id']}: nps_detractor - 株式会社サンプル") in mails


def test_a_move_up_or_within_the_team_tiers_tells_no_one(
    client: TestClient, runtime: Runtime
) -> None:
    post_signup(client, signup_payload("small", annual_contract_value=360_000))
    client.patch("/v1/customers/small", json={"tier": "tech"}, headers=AUTH)
    assert "tier_moved_down" not in tasks_by_kind(client)  # no CSM to tell


def test_an_overdue_task_is_escalated_to_the_team_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload("acct", annual_contract_value=3_600_000, **CSM))
    post_events(client, event("acct", "nps_submitted", properties={"score": 2}))
    task = tasks_by_kind(client)["nps_detractor"]  # due in a day
    config = runtime.handoff_config()

    def escalate() -> list[int] | None:
        return escalate_overdue_tasks(
            runtime.engine, runtime.transport, config=config, now=clock.now(), every=timedelta(0)
        )

    assert escalate() == []
    clock.advance(timedelta(days=1, hours=1))
    assert escalate() == [task["id"]]
    assert escalate() == []
    clock.advance(timedelta(days=3))
    assert escalate() == []
    overdue = [m for m in task_mails(settings) if "Overdue" in m[1]]
    assert overdue == [
        (TEAM, f"[Stepmail] Overdue task #{task['id']}: nps_detractor - 株式会社サンプル")
    ]
    assert tasks_by_kind(client)["nps_detractor"]["escalated_at"] is not None


def test_the_escalation_job_runs_once_per_period(runtime: Runtime, clock: FrozenClock) -> None:
    config = runtime.handoff_config()
    first = escalate_overdue_tasks(
        runtime.engine, runtime.transport, config=config, now=clock.now()
    )
    again = escalate_overdue_tasks(
        runtime.engine, runtime.transport, config=config, now=clock.now()
    )
    assert first == [] and again is None
