"""The daily health job: rescore only the customers whose score can have changed since the last
run (:mod:`orchestrator.health.daily` finds them), in chunks of one short transaction each.

The scheduler runs it once a day as a periodic job, from where the last run stopped
(``job_watermark``), so an outage is caught up and two schedulers never rescore the same
window; ``stepmail health daily`` runs it now.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.db.locks import lock_customers
from orchestrator.errors import JobAlreadyRunning, NoHealthDefinition
from orchestrator.health.daily import DailyReport, changed_customers, newly_actionable
from orchestrator.health.inputs import load_inputs
from orchestrator.health.rescore import rescore_customers
from orchestrator.observability.metrics import HEALTH_JOB_RUNS
from orchestrator.scheduling.periodic import Window, claim_window, finish_window
from orchestrator.services.events import UsageRules, advance
from orchestrator.services.tasks import TaskNotifier

HEALTH_DAILY = "health-daily"
EVERY = timedelta(days=1)
CLAIM_FOR = timedelta(hours=1)  # a run whose process died is taken over after this


def run_daily_if_due(
    engine: Engine,
    *,
    rules: UsageRules,
    now: datetime,
    notify: TaskNotifier,
    every: timedelta = EVERY,
) -> DailyReport | None:
    """Rescore what changed since the last run if a day has passed (``every=0``: run now), then
    notify every task not yet notified. None: no health file, or not due (or another process
    has the window)."""
    if rules.health is None:
        return None
    window = claim_window(engine, HEALTH_DAILY, every, now, CLAIM_FOR)
    if window is None:
        return None
    report = run_window(engine, window, rules=rules)
    finish_window(engine, HEALTH_DAILY, window)
    notify(None)
    return report


def run_daily_now(
    engine: Engine,
    *,
    rules: UsageRules,
    clock: Clock,
    notify: TaskNotifier,
    since: datetime | None = None,
) -> DailyReport:
    """``stepmail health daily``: from ``since``, or from where the last run stopped (then it
    counts as the day's run). NoHealthDefinition without a health file, JobAlreadyRunning when
    another process holds the window."""
    if rules.health is None:
        raise NoHealthDefinition("no health.yaml: nothing to score")
    now = clock.now()
    if since is not None:
        return run_window(engine, Window(since, now), rules=rules)
    report = run_daily_if_due(engine, rules=rules, now=now, notify=notify, every=timedelta(0))
    if report is None:
        raise JobAlreadyRunning("another process is running the daily rescoring right now")
    return report


def run_window(engine: Engine, window: Window, *, rules: UsageRules) -> DailyReport:
    """One run of the health job over ``window``, counted in ``stepmail_health_job_runs``."""
    try:
        report = run_daily_health(engine, rules=rules, until=window.until, since=window.since)
    except Exception:
        HEALTH_JOB_RUNS.labels("failed").inc()
        raise
    HEALTH_JOB_RUNS.labels("ok").inc()
    return report


def run_daily_health(
    engine: Engine,
    *,
    rules: UsageRules,
    until: datetime,
    since: datetime | None = None,
    chunk: int = 500,
) -> DailyReport:
    """Rescore the changed customers in chunks, one short transaction each (the candidates are
    read first, outside them)."""
    definition = rules.health
    assert definition is not None
    since = since or until - timedelta(days=1)
    report = DailyReport()
    with engine.connect() as connection:
        candidates, report.rows_examined = changed_customers(connection, definition, since, until)
        actionable = newly_actionable(connection, definition, since, until)
    report.newly_actionable = len(actionable)
    candidates |= actionable
    report.candidates = len(candidates)
    for ids in _chunks(sorted(candidates), chunk):
        with Session(engine) as session, session.begin():
            lock_customers(session.connection(), ids)
            inputs = load_inputs(session.connection(), definition, ids, until)
            report.task_ids += rescore_customers(
                session,
                ids,
                definition,
                rules.journeys,
                rules.action_cooldown,
                until,
                inputs=inputs,
            ).tasks
            advance(session, ids, rules, until, inputs)  # stages move with the health job too
    return report


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
