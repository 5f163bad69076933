"""The daily rescoring as a periodic job: the scheduler runs it once a day, from where the
last run stopped (``job_watermark``), so an outage is caught up and two schedulers never
rescore the same window."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.health.daily import DailyReport, run_daily
from orchestrator.runtime import Runtime
from orchestrator.scheduling.periodic import Window, claim_window, finish_window
from orchestrator.usage.events import usage_rules

HEALTH_DAILY = "health-daily"
EVERY = timedelta(days=1)
CLAIM_FOR = timedelta(hours=1)  # a run whose process died is taken over after this


def run_daily_if_due(
    runtime: Runtime, now: datetime, every: timedelta = EVERY
) -> DailyReport | None:
    """Rescore what changed since the last run if a day has passed (``every=0``: run now)."""
    rules = usage_rules(runtime)
    if rules.health is None:
        return None
    window = claim_window(runtime.engine, HEALTH_DAILY, every, now, CLAIM_FOR)
    if window is None:
        return None
    report = run_window(runtime, window)
    finish_window(runtime.engine, HEALTH_DAILY, window)
    runtime.notify_now()
    return report


def run_window(runtime: Runtime, window: Window) -> DailyReport:
    rules = usage_rules(runtime)
    assert rules.health is not None
    return run_daily(
        runtime.engine, rules.health, rules.journeys, rules.settings, window.until, window.since
    )
