"""Lifecycle stages as code: a customer starts in the first stage at signup; the rules of
journeys/lifecycle.yaml move them forward as usage arrives and with the daily health job (for
the customers those touched); a CSM sets a stage by hand (kept until the rules pass it) or pins
it; every move is in the history and a stage_changed event that enters journeys; ``stage`` is
usable in conditions; the read API shows it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customer_stage_history, customers, enrollments, usage_events
from orchestrator.runtime import Runtime
from orchestrator.services.health import run_daily_health
from orchestrator.settings import Settings
from orchestrator.tools.check import check_all
from tests.support.delivery import run_due
from tests.support.environment import ROOT, START, make_settings
from tests.support.journeys import journey_text, standard_with
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, post_events, send_states

SHIPPED = ROOT / "journeys"
ONLY_WHEN_ESTABLISHED = """\
name: Established only
trigger: {event: stage_changed, properties: {to: active}}
steps:
  - id: hello
    after: 0d
    template: onboarding/welcome
  - id: only_established
    after: 0d
    template: onboarding/basics
    when: "stage == 'established'"
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    files = {
        "lifecycle.yaml": (SHIPPED / "lifecycle.yaml").read_text("utf-8"),
        "established_only.yaml": journey_text("established_only", ONLY_WHEN_ESTABLISHED),
    }
    for stage in ("established", "active", "self_sufficient"):
        files[f"stage_{stage}.yaml"] = (SHIPPED / f"stage_{stage}.yaml").read_text("utf-8")
    folder = standard_with(tmp_path / "journeys", files)
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def stage_of(runtime: Runtime, external_id: str) -> tuple[str | None, str | None]:
    with runtime.engine.connect() as connection:
        row = connection.execute(
            select(customers.c.stage, customers.c.stage_source).where(
                customers.c.external_id == external_id
            )
        ).one()
    return row.stage, row.stage_source


def history(runtime: Runtime, external_id: str) -> list[tuple[str | None, str, str]]:
    query = (
        select(
            customer_stage_history.c.previous,
            customer_stage_history.c.stage,
            customer_stage_history.c.source,
        )
        .join(customers, customers.c.id == customer_stage_history.c.customer_id)
        .where(customers.c.external_id == external_id)
        .order_by(customer_stage_history.c.id)
    )
    with runtime.engine.connect() as connection:
        return [(r.previous, r.stage, r.source) for r in connection.execute(query)]


def journeys_of(runtime: Runtime, external_id: str) -> set[str]:
    query = (
        select(enrollments.c.journey_id)
        .join(customers, customers.c.id == enrollments.c.customer_id)
        .where(customers.c.external_id == external_id)
    )
    with runtime.engine.connect() as connection:
        return set(connection.execute(query).scalars())


def set_up(client: TestClient, clock: FrozenClock, external_id: str) -> None:
    """The key setup and five logins in the first days: 定着 (established)."""
    at = clock.now()
    post_events(
        client,
        event(external_id, "workflow_created", at),
        event(external_id, "integration_connected", at),
        *[event(external_id, "login", at - timedelta(minutes=i)) for i in range(5)],
    )


def weekly_reports(client: TestClient, clock: FrozenClock, external_id: str, weeks: int) -> None:
    """A report in each of the last ``weeks`` weeks, and logins this week."""
    now = clock.now()
    post_events(
        client,
        *[
            event(external_id, "report_created", now - timedelta(days=7 * w + 1))
            for w in range(weeks)
        ],
        *[event(external_id, "login", now - timedelta(hours=i + 1)) for i in range(5)],
    )


def test_a_customer_starts_in_the_first_stage_and_scripted_usage_moves_them_forward(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("amy"))
    assert stage_of(runtime, "amy") == ("onboarding", "signup")

    clock.set(START + timedelta(days=3))
    post_events(client, event("amy", "workflow_created"), event("amy", "login"))
    assert stage_of(runtime, "amy") == ("onboarding", "signup")  # not yet: no integration
    set_up(client, clock, "amy")
    assert stage_of(runtime, "amy") == ("established", "rules")
    assert "stage_established" in journeys_of(runtime, "amy")

    clock.set(START + timedelta(days=30))
    weekly_reports(client, clock, "amy", weeks=2)
    assert stage_of(runtime, "amy")[0] == "established"  # 2 of the last 4 weeks: not most
    weekly_reports(client, clock, "amy", weeks=3)
    assert stage_of(runtime, "amy") == ("active", "rules")
    assert history(runtime, "amy") == [
        (None, "onboarding", "signup"),
        ("onboarding", "established", "rules"),
        ("established", "active", "rules"),
    ]
    with runtime.engine.connect() as connection:
        moves = connection.execute(
            select(usage_events.c.properties).where(usage_events.c.name == "stage_changed")
        ).scalars()
        assert [m["to"] for m in moves] == ["established", "active"]
    assert {"stage_established", "stage_active"} <= journeys_of(runtime, "amy")
    run_due(runtime)
    ids = {k[0] for k in send_states(runtime, "stage_active")}
    assert list(send_states(runtime, "stage_active").values()) == ["sent"] and len(ids) == 1


def test_stage_is_usable_in_conditions(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload("amy"))
    set_up(client, clock, "amy")
    clock.set(START + timedelta(days=30))
    weekly_reports(client, clock, "amy", weeks=4)  # enters established_only when active
    run_due(runtime)
    assert sorted(send_states(runtime, "established_only").values()) == ["sent", "skipped"]


def test_a_stage_set_by_hand_is_kept_until_the_rules_pass_it_and_a_pinned_one_for_good(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    for who in ("kept", "pinned"):
        post_signup(client, signup_payload(who))
    put = client.put("/v1/customers/kept/stage", json={"stage": "established"}, headers=AUTH)
    assert put.status_code == 200 and put.json()["stage_source"] == "manual"
    pin = {"stage": "onboarding", "pinned": True, "reason": "migration project"}
    assert client.put("/v1/customers/pinned/stage", json=pin, headers=AUTH).status_code == 200
    assert "stage_established" in journeys_of(runtime, "kept")  # a move by hand enters too

    for who in ("kept", "pinned"):
        set_up(client, clock, who)  # qualifies for established: no move for either
    assert stage_of(runtime, "kept") == ("established", "manual")
    assert stage_of(runtime, "pinned") == ("onboarding", "pinned")

    clock.set(START + timedelta(days=30))
    for who in ("kept", "pinned"):
        weekly_reports(client, clock, who, weeks=4)
    assert stage_of(runtime, "kept") == ("active", "rules")  # the rules passed the hand-set stage
    assert stage_of(runtime, "pinned") == ("onboarding", "pinned")

    read = client.get("/v1/customers/kept", headers=AUTH).json()
    assert (read["stage"], read["stage_source"]) == ("active", "rules")
    # one route: the read API's profile, health and enrollments beside the stage
    assert read["health"]["band"] is not None and read["cancelled_at"] is None
    assert "stage_active" in {e["journey_id"] for e in read["enrollments"]}
    bad = client.put("/v1/customers/kept/stage", json={"stage": "expert"}, headers=AUTH)
    assert bad.status_code == 422 and "stage" in bad.text
    assert (
        client.put("/v1/customers/nobody/stage", json={"stage": "active"}, headers=AUTH).status_code
        == 404
    )


DAY_14 = """\
stages:
  - id: new
    label: {ja: 新規, en: New}
  - id: two_weeks
    label: {ja: 2週間, en: Two weeks}
    when: "days_since_signup >= 14"
"""


def test_the_daily_health_job_moves_the_customers_it_rescored(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    from orchestrator.runtime import build_runtime
    from tests.support.environment import FixedDraw

    folder = standard_with(tmp_path / "j", {"lifecycle.yaml": DAY_14})
    settings = make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)
    runtime = build_runtime(settings, clock=clock, jitter=FixedDraw())
    try:
        from orchestrator.api.app import create_app

        with TestClient(create_app(runtime)) as client:
            post_signup(client, signup_payload("amy"))
            assert stage_of(runtime, "amy") == ("new", "signup")
            clock.set(START + timedelta(days=14, hours=1))
            run_daily_health(runtime.engine, rules=runtime.usage_rules(), until=clock.now())
            assert stage_of(runtime, "amy") == ("two_weeks", "rules")
    finally:
        runtime.close()


def test_check_reports_a_broken_lifecycle_file_with_its_line(
    tmp_path: Path, database_url: str
) -> None:
    broken = DAY_14.replace('    when: "days_since_signup >= 14"\n', "")
    folder = standard_with(tmp_path / "j", {"lifecycle.yaml": broken})
    settings = make_settings(tmp_path, database_url, journeys_dir=folder)
    problems = check_all(settings, START).problems
    assert any("lifecycle.yaml" in p and "when" in p for p in problems), problems
