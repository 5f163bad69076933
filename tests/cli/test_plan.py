"""``stepmail plan`` against the configured database (SQLite and PostgreSQL): the numbers per
change, ``--json``, the exit code, and that it changes nothing; then applying does what the
plan said."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import journey_current, journey_versions, scheduled_sends
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.journey_versions import journey_versions as list_versions
from orchestrator.settings import Settings
from orchestrator.transports.outbox import OutboxTransport
from tests.support.environment import START, FixedDraw
from tests.support.journeys import write_journeys
from tests.support.versions import FLOW, FLOW_CHANGED, enroll, flow_settings

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return flow_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings, clock=clock, transport=OutboxTransport(settings.outbox_dir), jitter=FixedDraw()
    )
    for n in range(3):
        enroll(runtime, f"recent{n}")
    for n in range(2):
        enroll(runtime, f"early{n}", signed_up_at=START - timedelta(days=8))
    yield runtime
    runtime.close()


def plan(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        "STEPMAIL_DATABASE_URL": settings.database_url,
        "STEPMAIL_JOURNEYS_DIR": str(settings.journeys_dir),
        "STEPMAIL_TEMPLATES_DIR": str(settings.templates_dir),
        "STEPMAIL_OUTBOX_DIR": str(settings.outbox_dir),
    }
    result = runner.invoke(app, ["plan", "--at", START.isoformat(), *args], env=env)
    return result.exit_code, result.output


def _store(runtime: Runtime) -> tuple[int, list[tuple[str, str, object]]]:
    """Everything ``plan`` must leave as it was: versions, and every row's step and state."""
    with runtime.engine.connect() as connection:
        versions = connection.execute(select(func.count()).select_from(journey_versions))
        count = int(versions.scalar_one())
        rows = connection.execute(
            select(
                scheduled_sends.c.step_id, scheduled_sends.c.state, scheduled_sends.c.due_at
            ).order_by(scheduled_sends.c.id)
        ).all()
    return count, [tuple(row) for row in rows]


def test_plan_says_in_numbers_what_a_change_does_and_changes_nothing(
    runtime: Runtime, settings: Settings
) -> None:
    write_journeys(settings.journeys_dir, {"flow": FLOW_CHANGED})
    before = _store(runtime)
    code, output = plan(settings)
    assert code == 10, output
    assert "flow: version 1 → version 2 (in_flight: follow_latest), 5 enrollment(s)" in output
    assert "faq: 3d → 4d, 3 pending row(s) rescheduled" in output
    assert "new step webinar_invite at 5d: 3 enrollment(s) will get it, 2 are past it" in output
    assert "removed: legacy_tips, 3 pending row(s) cancelled" in output
    assert _store(runtime) == before  # read-only: not even the new version is stored


def test_plan_json_and_applying_does_what_it_said(runtime: Runtime, settings: Settings) -> None:
    write_journeys(settings.journeys_dir, {"flow": FLOW_CHANGED})
    code, output = plan(settings, "--json")
    assert code == 10
    document = json.loads(output)
    assert document["changes_in_flight"] is True and document["blocked"] is False
    (flow,) = document["journeys"]
    (group,) = flow["plan"]["groups"]
    assert group["rescheduled"] == [
        {"step": "faq", "from": "3d", "to": "4d", "pending_rows": 3, "now_missed": 0}
    ]
    assert group["added"] == [
        {"step": "webinar_invite", "after": "5d", "will_get_it": 3, "past_it": 2}
    ]
    assert group["cancelled"][0]["pending_rows"] == 3
    runtime.catalog.refresh()  # applied
    report = list_versions(runtime.engine, "flow")[-1].apply_report
    assert report is not None
    (done,) = report["groups"]
    assert done["rescheduled"] == {"faq": {"rows": 3, "missed": 0}}
    assert done["added"] == {"webinar_invite": {"scheduled": 3, "past": 2}}
    assert done["cancelled"] == {"legacy_tips": 3}
    code, output = plan(settings)
    assert code == 0, output
    assert "flow: unchanged (version 2), 5 enrollment(s) in flight" in output


def test_plan_names_a_vanished_step_and_exits_11(runtime: Runtime, settings: Settings) -> None:
    write_journeys(settings.journeys_dir, {"flow": FLOW.replace("id: faq\n", "id: questions\n")})
    code, output = plan(settings)
    assert code == 11, output
    assert "VANISHED: faq, 3 pending row(s) wait for it" in output
    assert "NOT APPLIED: step faq vanished while 3 row(s) wait for it" in output


def test_plan_of_a_comment_only_change_changes_nothing_in_flight(
    runtime: Runtime, settings: Settings
) -> None:
    write_journeys(settings.journeys_dir, {"flow": FLOW + "# a comment\n"})
    code, output = plan(settings)
    assert code == 0, output
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(journey_current)).scalar() == 1


def test_plan_under_finish_started_changes_nothing_in_flight(
    runtime: Runtime, settings: Settings
) -> None:
    finish = FLOW_CHANGED.replace("grace: 24h\n", "grace: 24h\nin_flight: finish_started\n")
    write_journeys(settings.journeys_dir, {"flow": finish})
    code, output = plan(settings)
    assert code == 0, output
    assert "5 enrollment(s) on version 1 finish on it (in_flight: finish_started)" in output


def test_a_step_renamed_and_re_timed_is_planned_as_applied(
    runtime: Runtime, settings: Settings
) -> None:
    moved = FLOW.replace(
        "id: faq\n    after: 3d", "id: questions\n    renamed_from: faq\n    after: 4d"
    )
    write_journeys(settings.journeys_dir, {"flow": moved})
    code, output = plan(settings)
    assert code == 10, output
    assert "renamed: faq → questions, 3 pending row(s) move" in output
    assert "questions: 3d → 4d, 3 pending row(s) rescheduled" in output
    runtime.catalog.refresh()
    (done,) = list_versions(runtime.engine, "flow")[-1].apply_report["groups"]  # type: ignore[index]
    assert done["renamed"] == {"faq→questions": 3}
    assert done["rescheduled"] == {"questions": {"rows": 3, "missed": 0}}


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_journeys_folder_that_is_missing_or_empty_is_refused(
    runtime: Runtime, settings: Settings, state: str
) -> None:
    """A mistyped ``STEPMAIL_JOURNEYS_DIR`` planned every journey as removed ("nobody new
    enters") and exited 0."""
    for path in settings.journeys_dir.iterdir():
        path.unlink()
    if state == "missing":
        settings.journeys_dir.rmdir()
    code, output = plan(settings)
    assert code == 78, output
    assert output.startswith("error: STEPMAIL_JOURNEYS_DIR: "), output
    assert "nobody new enters" not in output
