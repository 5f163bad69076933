"""A journey that changes under customers in flight: its folder, its templates (a copy, so a
test can edit one), enrolling customers on it and reading what each has waiting."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from orchestrator.db.tables import enrollments, journey_versions, scheduled_sends
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.runtime import Runtime
from orchestrator.services.signup import enroll_signup
from orchestrator.settings import Settings
from tests.support.environment import ROOT, make_settings
from tests.support.journeys import write_journeys

FLOW = """\
name: Flow
grace: 24h
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
  - id: basics
    after: 2d
    template: onboarding/basics
  - id: faq
    after: 3d
    template: onboarding/faq
  - id: legacy_tips
    after: 6d
    template: onboarding/next_steps
"""


# FLOW changed as a reviewer would: faq re-timed 3d -> 4d, legacy_tips removed (its rows
# cancelled with a reason) and webinar_invite added.
FLOW_CHANGED = (
    FLOW.replace("after: 3d", "after: 4d")
    .replace("grace: 24h\n", "grace: 24h\nremoved_steps:\n  legacy_tips: replaced by the webinar\n")
    .replace(
        "  - id: legacy_tips\n    after: 6d\n    template: onboarding/next_steps\n",
        "  - id: webinar_invite\n    after: 5d\n    template: onboarding/faq\n",
    )
)


def flow_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings whose journeys folder holds ``flow`` alone, beside a copy of the templates."""
    journeys, templates = flow_folders(tmp_path)
    return make_settings(tmp_path, database_url, journeys_dir=journeys, templates_dir=templates)


def flow_folders(tmp_path: Path, body: str = FLOW) -> tuple[Path, Path]:
    """The journeys folder (``flow`` alone) and a copy of the shipped templates."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "mail", templates)
    return write_journeys(tmp_path / "journeys", {"flow": body}), templates


def change_flow(runtime: Runtime, body: str) -> None:
    """Write a new ``flow.yaml`` and have the runtime pick it up now."""
    write_journeys(runtime.settings.journeys_dir, {"flow": body})
    runtime.catalog.refresh()


def enroll(
    runtime: Runtime, external_id: str = "cust-1", signed_up_at: datetime | None = None
) -> int:
    signup = SignupRequest(
        external_id=external_id,
        email=f"{external_id}@customer.example",
        name="Test Customer",
        tier="tech",
        signed_up_at=signed_up_at,
    )
    accepted = enroll_signup(
        runtime.engine,
        signup,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )
    return accepted.customer_id


def rows_of(runtime: Runtime, customer_id: int) -> dict[str, Any]:
    """Step id → that customer's row in ``flow`` (state, due_at, reason)."""
    query = select(
        scheduled_sends.c.step_id,
        scheduled_sends.c.state,
        scheduled_sends.c.due_at,
        scheduled_sends.c.reason,
    ).where(scheduled_sends.c.customer_id == customer_id, scheduled_sends.c.journey_id == "flow")
    with runtime.engine.connect() as connection:
        return {row.step_id: row for row in connection.execute(query)}


def enrollment_of(runtime: Runtime, customer_id: int) -> Any:
    query = select(enrollments).where(
        enrollments.c.customer_id == customer_id, enrollments.c.journey_id == "flow"
    )
    with runtime.engine.connect() as connection:
        return connection.execute(query).one()


def version_numbers(runtime: Runtime) -> dict[int, int]:
    """Version id → number, of ``flow``."""
    query = select(journey_versions.c.id, journey_versions.c.number).where(
        journey_versions.c.journey_id == "flow"
    )
    with runtime.engine.connect() as connection:
        return {row.id: row.number for row in connection.execute(query)}


def apply_in_a_process(
    database_url: str,
    journeys_dir: Path,
    templates_dir: Path,
    now: datetime,
    barrier: Any,
    results: Any,
) -> None:
    """One process of a race: read the folder, wait for the other, apply what it holds."""
    from orchestrator.clock import FrozenClock
    from orchestrator.db.engine import make_engine
    from orchestrator.services.journey_catalog import read_journey_contents
    from orchestrator.services.journey_versions import sync_journey

    engine = make_engine(database_url)
    try:
        contents, _ = read_journey_contents(journeys_dir, templates_dir, "ja")
        content, journey = contents["flow"]
        barrier.wait(timeout=60)
        outcome = sync_journey(engine, content, journey, clock=FrozenClock(now))
        results.put(outcome.status)
    except Exception as exc:  # the parent asserts on what each process said
        results.put(f"error: {exc!r}")
    finally:
        engine.dispose()
