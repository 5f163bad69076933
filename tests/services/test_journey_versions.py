"""A journey changed under customers in flight, on the real pipeline (SQLite and PostgreSQL):
each change (add, remove, rename, re-time, a changed condition, a vanished step) under both
``in_flight`` policies, and what each customer is then sent."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from orchestrator.clock import FrozenClock
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.analytics import refresh_rollups
from orchestrator.services.journey_catalog import read_journey_contents, version_overview
from orchestrator.services.journey_versions import journey_versions, plan_changes
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.delivery import run_due
from tests.support.environment import START, FixedDraw, make_settings
from tests.support.journeys import write_journeys
from tests.support.signups import outbox_files
from tests.support.versions import (
    FLOW,
    change_flow,
    enroll,
    enrollment_of,
    flow_folders,
    rows_of,
    version_numbers,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    journeys, templates = flow_folders(tmp_path)
    return make_settings(tmp_path, database_url, journeys_dir=journeys, templates_dir=templates)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    yield runtime
    runtime.close()


def _subjects(settings: Settings) -> list[str]:
    return [
        str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"])
        for path in outbox_files(settings)
    ]


def _numbers(runtime: Runtime, customer_id: int) -> tuple[int, int]:
    """(the version number the enrollment started on, the one it follows now)."""
    enrollment = enrollment_of(runtime, customer_id)
    numbers = version_numbers(runtime)
    return numbers[enrollment.started_version_id], numbers[enrollment.version_id]


def test_the_first_content_is_version_1_and_enrollments_record_it(runtime: Runtime) -> None:
    customer = enroll(runtime)
    assert _numbers(runtime, customer) == (1, 1)
    runtime.catalog.refresh()  # the same files again: no new version
    assert list(version_numbers(runtime).values()) == [1]


def test_a_changed_delay_reschedules_the_pending_rows(runtime: Runtime, clock: FrozenClock) -> None:
    customer = enroll(runtime)
    change_flow(runtime, FLOW.replace("after: 3d", "after: 4d"))
    rows = rows_of(runtime, customer)
    assert rows["faq"].state == "pending"
    assert rows["faq"].due_at == START + timedelta(days=4)
    assert "3d → 4d" in rows["faq"].reason and "version 2" in rows["faq"].reason
    assert _numbers(runtime, customer) == (1, 2)
    clock.advance(timedelta(days=3, hours=1))
    run_due(runtime)
    assert rows_of(runtime, customer)["faq"].state == "pending"  # not at the old time


def test_an_added_step_goes_to_those_in_time_and_is_missed_by_those_past_it(
    runtime: Runtime, clock: FrozenClock
) -> None:
    early = enroll(runtime, "early", signed_up_at=START - timedelta(days=8))
    recent = enroll(runtime, "recent")
    added = FLOW + "  - id: webinar_invite\n    after: 5d\n    template: onboarding/faq\n"
    change_flow(runtime, added)
    assert rows_of(runtime, recent)["webinar_invite"].state == "pending"
    assert rows_of(runtime, recent)["webinar_invite"].due_at == START + timedelta(days=5)
    late = rows_of(runtime, early)["webinar_invite"]
    assert late.state == "missed" and "added in version 2" in late.reason
    clock.advance(timedelta(days=5))
    run_due(runtime)
    assert rows_of(runtime, recent)["webinar_invite"].state == "sent"


def test_a_removed_step_is_cancelled_with_the_reason_and_the_version(runtime: Runtime) -> None:
    customer = enroll(runtime)
    removed = FLOW.replace(
        "  - id: legacy_tips\n    after: 6d\n    template: onboarding/next_steps\n",
        "removed_steps:\n  legacy_tips: replaced by the webinar series\n",
    )
    change_flow(runtime, removed)
    row = rows_of(runtime, customer)["legacy_tips"]
    assert row.state == "cancelled"
    assert row.reason == "removed in version 2: replaced by the webinar series"


def test_a_rename_moves_pending_rows_and_keeps_sent_history(
    runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    customer = enroll(runtime)
    run_due(runtime)  # welcome is sent
    renamed = FLOW.replace("id: basics\n", "id: first_steps\n    renamed_from: basics\n").replace(
        "id: welcome\n", "id: hello\n    renamed_from: welcome\n"
    )
    change_flow(runtime, renamed)
    rows = rows_of(runtime, customer)
    assert "basics" not in rows and rows["first_steps"].state == "pending"
    assert rows["welcome"].state == "sent" and "hello" not in rows  # history, not sent again
    clock.advance(timedelta(days=2))
    run_due(runtime)
    assert rows_of(runtime, customer)["first_steps"].state == "sent"
    assert len(outbox_files(settings)) == 2


def test_a_vanished_step_with_pending_rows_blocks_the_change_loudly(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    customer = enroll(runtime)
    vanished = FLOW.replace("id: faq\n", "id: questions\n")  # renamed without renamed_from
    with caplog.at_level(logging.ERROR):
        change_flow(runtime, vanished)
    assert any("step faq vanished while 1 row(s) wait for it" in r.message for r in caplog.records)
    assert rows_of(runtime, customer)["faq"].state == "pending"
    assert "questions" not in rows_of(runtime, customer)
    assert _numbers(runtime, customer) == (1, 1)
    versions = journey_versions(runtime.engine, "flow")
    assert [v.current for v in versions] == [True, False]
    assert versions[1].blocked_reason and "renamed_from: faq" in versions[1].blocked_reason


def test_a_changed_condition_applies_at_send_time(runtime: Runtime, clock: FrozenClock) -> None:
    customer = enroll(runtime)
    change_flow(
        runtime,
        FLOW.replace("template: onboarding/faq", "template: onboarding/faq\n    when: 'false'"),
    )
    clock.advance(timedelta(days=3))
    run_due(runtime)
    assert rows_of(runtime, customer)["faq"].state == "skipped"


FINISH = FLOW.replace("grace: 24h\n", "grace: 24h\nin_flight: finish_started\n")


def test_finish_started_keeps_customers_on_their_version(
    runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    change_flow(runtime, FINISH)
    started = enroll(runtime, "started")
    faq = settings.templates_dir / "onboarding" / "faq.tech.ja.html"
    faq.write_text(
        faq.read_text("utf-8").replace("よくあるご質問トップ3と回答", "新しい件名"), "utf-8"
    )
    changed = FINISH.replace("after: 3d", "after: 4d").replace(
        "template: onboarding/faq", "template: onboarding/faq\n    when: 'false'"
    )
    change_flow(runtime, changed)
    newcomer = enroll(runtime, "newcomer")
    assert _numbers(runtime, started) == (2, 2)
    assert _numbers(runtime, newcomer) == (3, 3)
    assert rows_of(runtime, started)["faq"].due_at == START + timedelta(days=3)
    assert rows_of(runtime, newcomer)["faq"].due_at == START + timedelta(days=4)
    clock.advance(timedelta(days=4))
    run_due(runtime)
    assert rows_of(runtime, started)["faq"].state == "sent"  # the old condition, the old text
    assert rows_of(runtime, newcomer)["faq"].state == "skipped"
    assert any("よくあるご質問トップ3と回答" in s for s in _subjects(settings))
    assert not any("新しい件名" in s for s in _subjects(settings))


def test_follow_latest_sends_the_new_template_text(
    runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    customer = enroll(runtime)
    faq = settings.templates_dir / "onboarding" / "faq.tech.ja.html"
    faq.write_text(
        faq.read_text("utf-8").replace("よくあるご質問トップ3と回答", "新しい件名"), "utf-8"
    )
    runtime.catalog.refresh()
    assert _numbers(runtime, customer) == (1, 2)
    clock.advance(timedelta(days=3))
    run_due(runtime)
    assert rows_of(runtime, customer)["faq"].state == "sent"
    assert any("新しい件名" in subject for subject in _subjects(settings))


def test_versions_list_who_started_and_follows(runtime: Runtime) -> None:
    enroll(runtime, "a")
    change_flow(runtime, FLOW.replace("after: 3d", "after: 4d"))
    enroll(runtime, "b")
    versions = journey_versions(runtime.engine, "flow")
    assert [(v.ref.number, v.started, v.following, v.current) for v in versions] == [
        (1, 1, 0, False),
        (2, 1, 2, True),
    ]
    assert versions[1].apply_report is not None
    # The rollup job counts them into journey_version_starts; the page adds those not counted yet.
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules(), batches=None)
    enroll(runtime, "c")
    versions = journey_versions(runtime.engine, "flow")
    assert [(v.ref.number, v.started, v.following) for v in versions] == [(1, 1, 0), (2, 2, 3)]
    refresh_rollups(runtime.engine, rules=runtime.analytics_rules(), batches=None)
    again = journey_versions(runtime.engine, "flow")
    assert [(v.ref.number, v.started, v.following) for v in again] == [(1, 1, 0), (2, 2, 3)]


def test_the_journey_page_reads_who_follows_each_version_once(
    runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    """The page's versions and its pending plan come from one read of the open enrollments
    by version (it grows with the journey's customers), and say what the two reads apart say."""
    enroll(runtime, "a")
    change_flow(runtime, FLOW.replace("after: 3d", "after: 4d"))
    enroll(runtime, "b")
    write_journeys(settings.journeys_dir, {"flow": FLOW.replace("after: 3d", "after: 5d")})
    grouped: list[str] = []

    def statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if "GROUP BY enrollment.version_id" in sql and "scheduled_send" not in sql:
            grouped.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", statement)
    try:
        overview = version_overview(
            runtime.engine,
            settings.journeys_dir,
            settings.templates_dir,
            settings.default_locale,
            "flow",
            clock.now(),
        )
    finally:
        event.remove(runtime.engine, "before_cursor_execute", statement)
    assert len(grouped) == 1
    assert overview.versions == journey_versions(runtime.engine, "flow")
    pending = plan_changes(
        runtime.engine,
        read_journey_contents(settings.journeys_dir, settings.templates_dir, "ja")[0],
        now=clock.now(),
        journey_ids=["flow"],
    )[0]
    assert overview.pending == pending
    assert overview.pending is not None and overview.pending.status == "changed"
    assert overview.pending.in_flight == 2
    assert overview.pending.plan is not None
    assert [group.enrollments for group in overview.pending.plan.groups] == [2]


def test_a_changed_file_is_picked_up_without_a_restart(
    runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    customer = enroll(runtime)
    added = FLOW + "  - id: webinar_invite\n    after: 5d\n    template: onboarding/faq\n"
    (settings.journeys_dir / "flow.yaml").write_text(
        (settings.journeys_dir / "flow.yaml").read_text("utf-8").replace(FLOW, added), "utf-8"
    )
    clock.advance(timedelta(seconds=2))  # past the once-a-second look at the files
    assert "webinar_invite" in [step.id for step in runtime.journeys["flow"].steps]
    assert rows_of(runtime, customer)["webinar_invite"].state == "pending"
    newcomer = enroll(runtime, "newcomer")
    assert _numbers(runtime, newcomer) == (2, 2)


def test_a_process_with_stale_files_does_not_bring_back_an_older_version(
    runtime: Runtime, settings: Settings
) -> None:
    from orchestrator.services.journey_catalog import read_journey_contents
    from orchestrator.services.journey_versions import sync_journey

    stale, _ = read_journey_contents(settings.journeys_dir, settings.templates_dir, "ja")
    customer = enroll(runtime)
    change_flow(runtime, FLOW.replace("after: 3d", "after: 4d"))
    content, journey = stale["flow"]
    outcome = sync_journey(runtime.engine, content, journey, clock=runtime.clock)
    assert outcome.status == "superseded"
    assert _numbers(runtime, customer) == (1, 2)
    assert rows_of(runtime, customer)["faq"].due_at == START + timedelta(days=4)


def test_a_paused_enrollment_follows_the_change_and_its_rows_stay_held(
    runtime: Runtime, clock: FrozenClock
) -> None:
    from orchestrator.audit.log import Actor
    from orchestrator.services.enrollment_control import pause_enrollment, resume_enrollment

    editor = Actor("editor@acme.example", None)
    customer = enroll(runtime)
    enrollment = enrollment_of(runtime, customer).id
    pause_enrollment(runtime.engine, enrollment, actor=editor, clock=clock)
    changed = FLOW.replace("after: 3d", "after: 4d").replace(
        "id: basics\n", "id: first_steps\n    renamed_from: basics\n"
    ) + ("  - id: webinar_invite\n    after: 5d\n    template: onboarding/faq\n")
    change_flow(runtime, changed)
    rows = rows_of(runtime, customer)
    assert _numbers(runtime, customer) == (1, 2)
    assert rows["faq"].state == "paused" and rows["faq"].due_at == START + timedelta(days=4)
    assert rows["first_steps"].state == "paused" and "basics" not in rows
    assert rows["webinar_invite"].state == "paused"
    clock.advance(timedelta(days=1))
    resume_enrollment(runtime.engine, enrollment, actor=editor, clock=clock)
    rows = rows_of(runtime, customer)
    assert rows["faq"].state == "pending" and rows["faq"].due_at == START + timedelta(days=5)
    assert rows["webinar_invite"].due_at == START + timedelta(days=6)
