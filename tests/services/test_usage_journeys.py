"""Journeys that react to usage, on the real pipeline with a frozen clock: the day-3 nudge,
the first-use mail, a wait with a timeout, goals, exits, event triggers and tier moves."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import csm_tasks, scheduled_sends
from orchestrator.journeys.loader import load_journey
from orchestrator.runtime import Runtime
from orchestrator.services.delivery import deliver
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import STANDARD_JOURNEYS, START, make_settings
from tests.support.signups import outbox_files, post_signup
from tests.support.signups import signup_payload as base_payload
from tests.support.usage import API_KEY, AUTH, enrollment_rows, event, post_events, send_states

WAIT_JOURNEY = """\
id: activation
name: Activation
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
    wait_for: {event: report_created, timeout: 3d, if_seen: praised, if_timeout: nudged}
  - id: praised
    template: onboarding/next_steps
  - id: nudged
    template: onboarding/activation_nudge
"""
TRIAL_JOURNEY = """\
id: trial_end
name: Trial ending
trigger: trial_will_end
reentry: {after: 30d}
steps:
  - id: reminder
    after: 0d
    template: onboarding/faq
"""

ONBOARDING_VARS = yaml.safe_dump(
    {"vars": load_journey(STANDARD_JOURNEYS / "onboarding.yaml").vars}, allow_unicode=True
)


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    return STANDARD_JOURNEYS


@pytest.fixture
def settings(tmp_path: Path, database_url: str, journeys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=journeys_dir)


def signup_payload(external_id: str, **overrides: object) -> dict[str, object]:
    return base_payload(external_id, email=f"{external_id}@customer.example", **overrides)


def customer_id(runtime: Runtime, external_id: str) -> int:
    rows = enrollment_rows(runtime)
    from orchestrator.db.tables import customers

    with runtime.engine.connect() as connection:
        found = connection.execute(
            select(customers.c.id).where(customers.c.external_id == external_id)
        ).scalar_one()
    assert rows
    return int(found)


def test_the_day_3_nudge_goes_only_to_those_who_did_not_act(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    for name in ("active", "idle"):
        post_signup(client, signup_payload(name))
    clock.set(START + timedelta(days=1))
    assert post_events(client, event("active", "report_created", id="r1")).status_code == 202
    run_due(runtime)
    clock.set(START + timedelta(days=3, hours=4))
    run_due(runtime)

    states = send_states(runtime)
    active, idle = customer_id(runtime, "active"), customer_id(runtime, "idle")
    assert states[(active, "activation_nudge")] == "skipped"
    assert states[(idle, "activation_nudge")] == "sent"
    assert states[(active, "next_steps")] == "sent"
    assert (idle, "next_steps") not in states


def test_the_first_use_mail_goes_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload("user"))
    assert run_due(runtime) == ["sent"]  # welcome
    clock.advance(timedelta(hours=5))
    post_events(client, event("user", "report_created", id="r1"))
    assert run_due(runtime) == ["sent"]  # next steps, right away
    clock.advance(timedelta(hours=1))
    post_events(client, event("user", "report_created", id="r2"))
    assert run_due(runtime) == []

    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
        for p in outbox_files(settings)
    ]
    assert sum("最初のレポート" in s for s in subjects) == 1


def test_events_before_the_enrollment_do_not_trigger_steps(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("user"))
    post_events(client, event("user", "report_created", clock.now() - timedelta(days=2)))
    assert (customer_id(runtime, "user"), "next_steps") not in send_states(runtime)


class TestWaitForAnEvent:
    @pytest.fixture
    def journeys_dir(self, tmp_path: Path) -> Path:
        folder = tmp_path / "journeys"
        folder.mkdir()
        (folder / "activation.yaml").write_text(WAIT_JOURNEY + ONBOARDING_VARS, encoding="utf-8")
        return folder

    def test_both_paths_are_taken_by_two_customers(
        self, client: TestClient, runtime: Runtime, clock: FrozenClock
    ) -> None:
        post_signup(client, signup_payload("quick"))
        post_signup(client, signup_payload("slow"))
        run_due(runtime)
        clock.set(START + timedelta(days=1))
        post_events(client, event("quick", "report_created"))
        run_due(runtime)
        clock.set(START + timedelta(days=3))
        run_due(runtime)
        clock.set(START + timedelta(days=4))
        post_events(client, event("slow", "report_created"))  # after the timeout: too late
        run_due(runtime)

        states = send_states(runtime, "activation")
        quick, slow = customer_id(runtime, "quick"), customer_id(runtime, "slow")
        assert states[(quick, "praised")] == "sent"
        assert states[(quick, "nudged")] == "cancelled"
        assert states[(slow, "nudged")] == "sent"
        assert (slow, "praised") not in states

    def test_an_event_racing_the_claimed_timeout_branch_wins_exactly_once(
        self, client: TestClient, runtime: Runtime, clock: FrozenClock
    ) -> None:
        post_signup(client, signup_payload("racer"))
        run_due(runtime)
        clock.set(START + timedelta(days=3))
        ids = claim_due_sends(runtime.engine, clock.now(), 10, timedelta(seconds=120))
        assert len(ids) == 1  # the timeout branch, dispatched but not yet taken by a worker
        late = event("racer", "report_created", clock.now() - timedelta(minutes=1))
        post_events(client, late)  # happened before the timeout, arrives just after it
        assert deliver(runtime.delivery_deps(), ids[0]) == "ignored"
        run_due(runtime)
        states = send_states(runtime, "activation")
        racer = customer_id(runtime, "racer")
        assert (states[(racer, "nudged")], states[(racer, "praised")]) == ("cancelled", "sent")

    def test_an_event_after_the_timeout_branch_started_sending_changes_nothing(
        self, client: TestClient, runtime: Runtime, clock: FrozenClock
    ) -> None:
        post_signup(client, signup_payload("racer"))
        run_due(runtime)
        clock.set(START + timedelta(days=3))
        ids = claim_due_sends(runtime.engine, clock.now(), 10, timedelta(seconds=120))
        with runtime.engine.begin() as connection:  # a worker is talking to the transport
            connection.execute(
                update(scheduled_sends)
                .where(scheduled_sends.c.id == ids[0])
                .values(state="sending")
            )
        post_events(client, event("racer", "report_created", clock.now() - timedelta(minutes=1)))
        states = send_states(runtime, "activation")
        racer = customer_id(runtime, "racer")
        assert states[(racer, "nudged")] == "sending"
        assert (racer, "praised") not in states


def test_the_goal_converts_and_stops_later_steps(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("buyer"))
    run_due(runtime)
    clock.set(START + timedelta(days=2))
    post_events(client, event("buyer", "subscription_upgraded", id="up-1"))
    clock.set(START + timedelta(days=40))
    assert run_due(runtime) == []

    (enrollment,) = enrollment_rows(runtime)
    assert enrollment.state == "converted"
    assert enrollment.ended_at == START + timedelta(days=2)
    assert "goal subscription_upgraded" in enrollment.end_reason
    states = send_states(runtime)
    buyer = customer_id(runtime, "buyer")
    assert states[(buyer, "welcome")] == "sent"
    assert {states[(buyer, s)] for s in ("faq", "case_studies", "feedback")} == {"cancelled"}


def test_an_exit_event_stops_later_steps(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("leaver"))
    run_due(runtime)
    clock.set(START + timedelta(days=5))
    post_events(client, event("leaver", "subscription_cancelled"))
    clock.set(START + timedelta(days=40))
    assert run_due(runtime) == []
    (enrollment,) = enrollment_rows(runtime)
    assert enrollment.state == "exited"
    assert "exit event subscription_cancelled" in enrollment.end_reason


class TestEventTriggeredJourney:
    @pytest.fixture
    def journeys_dir(self, tmp_path: Path) -> Path:
        folder = tmp_path / "journeys"
        shutil.copytree(STANDARD_JOURNEYS, folder)
        (folder / "trial_end.yaml").write_text(TRIAL_JOURNEY + ONBOARDING_VARS, encoding="utf-8")
        return folder

    def test_entered_on_an_event_with_the_re_entry_rule(
        self, client: TestClient, runtime: Runtime, clock: FrozenClock
    ) -> None:
        post_signup(client, signup_payload("trial"))
        for day in (1, 11, 45):
            clock.set(START + timedelta(days=day))
            post_events(client, event("trial", "trial_will_end", id=f"t{day}"))
            run_due(runtime)
        trial = [e for e in enrollment_rows(runtime) if e.journey_id == "trial_end"]
        assert [e.anchor_at for e in trial] == [
            START + timedelta(days=1),
            START + timedelta(days=45),
        ]  # day 11 is within 30 days of the first entry
        with runtime.engine.connect() as connection:
            sent = connection.execute(
                select(scheduled_sends.c.state).where(scheduled_sends.c.journey_id == "trial_end")
            ).scalars()
            assert list(sent) == ["sent", "sent"]


def test_a_tier_change_mid_journey_changes_the_next_mail(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    payload = signup_payload("grower", csm_name="佐藤 花子", csm_email="hanako@vendor.example")
    post_signup(client, payload)
    clock.set(START + timedelta(days=1))
    run_due(runtime)
    clock.set(START + timedelta(days=2))
    response = client.patch(
        "/v1/customers/grower", json={"annual_contract_value": 3_600_000}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json()["tier"] == "high" and not response.json()["tier_explicit"]
    run_due(runtime)  # the CSM introduction, entered on tier_changed
    clock.set(START + timedelta(days=3))
    run_due(runtime)

    mails = {
        p.name: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in outbox_files(settings)
    }
    faq = next(m for name, m in mails.items() if "-faq" in name)
    basics = next(m for name, m in mails.items() if "-basics" in name)
    assert "佐藤 花子" in str(faq["From"]) and "佐藤 花子" not in str(basics["From"])
    assert any(
        "csm_introduction" in str(m.get("X-Stepmail-Journey", "")) or "introduction" in n
        for n, m in mails.items()
    )
    with runtime.engine.connect() as connection:
        kinds = [row.kind for row in connection.execute(select(csm_tasks))]
    assert kinds == ["new_high_touch"]
