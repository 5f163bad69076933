"""The console's customer page with the customer-success loop, in a real headless browser:
the lifecycle stage and its history, the NPS answer, the mails held while a CSM works the
account; a CSM sets (and pins) a stage by hand, a viewer cannot. Its own server, because the
lifecycle file is not among the frozen standard journeys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.accounts.passwords import make_hasher
from orchestrator.accounts.roles import Role
from orchestrator.clock import FrozenClock
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import audit_log, customers
from orchestrator.handoff.tasks import open_task
from orchestrator.recipients.survey_links import make_survey_token
from orchestrator.runtime import build_runtime
from orchestrator.services.accounts import add_user
from orchestrator.services.surveys import SurveyRules, answer_nps
from orchestrator.transports.outbox import OutboxTransport
from tests.browser.test_console import (
    API_KEY,
    PASSWORD,
    SCREENSHOTS,
    USERS,
    Console,
    serving_console,
)
from tests.support.browser import require_browser
from tests.support.delivery import run_due
from tests.support.environment import ROOT, START, make_settings
from tests.support.journeys import standard_with
from tests.support.live_server import base_url_of, loopback_listener


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    sync_playwright = require_browser()
    tmp: Path = tmp_path_factory.mktemp("console-lifecycle")
    url = f"sqlite:///{tmp / 'stepmail.db'}"
    upgrade(url)
    listener = loopback_listener()
    base_url = base_url_of(listener)
    lifecycle = (ROOT / "journeys" / "lifecycle.yaml").read_text("utf-8")
    journeys = standard_with(tmp / "journeys", {"lifecycle.yaml": lifecycle})
    settings = make_settings(
        tmp, url, public_base_url=base_url, api_key=API_KEY, journeys_dir=journeys
    )
    clock = FrozenClock(START)
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    hasher = make_hasher()
    for role in ("csm", "viewer"):
        add_user(runtime.engine, USERS[role], Role(role), PASSWORD, hasher=hasher, clock=clock)
    try:
        with serving_console(runtime, clock, listener, sync_playwright) as console:
            yield console
    finally:
        runtime.close()


def a_customer_in_the_loop(console: Console, external_id: str) -> None:
    """Onboarded by the rules, a detractor answer, and the next onboarding mail held because
    a CSM task is open."""
    runtime = console.runtime
    console.signup(external_id, annual_contract_value=3_600_000, csm_email=USERS["csm"])
    run_due(runtime)
    console.track(external_id, "workflow_created")
    console.track(external_id, "integration_connected")
    for n in range(5):  # five distinct logins (the same content would be one event)
        console.track(external_id, "login", n=n)
    with runtime.engine.begin() as connection:
        row = connection.execute(
            select(customers.c.id, customers.c.public_id).where(
                customers.c.external_id == external_id
            )
        ).one()
        open_task(connection, row.id, "health_at_risk", "usage dropped", timedelta(days=2), START)
    settings = runtime.settings
    token = make_survey_token(settings.signing_secret(), row.public_id, "onboarding-feedback")
    rules = SurveyRules(settings.signing_secret(), "ja", runtime.usage_rules())
    answer_nps(
        runtime.engine,
        token,
        "3",
        "レポートが遅い",
        rules=rules,
        clock=console.clock,
        notify=lambda ids: None,
        reader_language=None,
    )
    console.clock.set(console.clock.now() + timedelta(days=1, hours=1))
    run_due(runtime)  # day 1: the basics mail is held for the open task


def test_a_csm_sees_the_loop_and_sets_a_stage_by_hand(console: Console) -> None:
    a_customer_in_the_loop(console, "loop-1")
    page = console.page("csm", "ja", javascript=False)
    page.goto(f"{console.base_url}/console/customers/loop-1")
    assert page.inner_text("#stage-badge") == "定着"
    assert "ルールによる" in page.inner_text("#stage")
    assert "導入 → 定着" in page.inner_text("#stage-history")
    assert page.inner_text("#nps-answers .nps-score") == "3"
    assert "レポートが遅い" in page.inner_text("#nps-answers")
    assert "onboarding/basics" in page.inner_text("#holds")
    assert "タスク完了まで待機中" in page.inner_text("#holds")
    page.screenshot(path=str(SCREENSHOTS / "customer-loop-ja.png"), full_page=True)

    page.select_option("#stage-choice", "self_sufficient")
    page.check("#stage-pinned")
    page.fill("#stage-reason", "移行プロジェクト完了")
    with page.expect_navigation():
        page.click("#set-stage")
    assert page.inner_text("#notice") == "ステージを設定しました。"
    assert page.inner_text("#stage-badge") == "自走"
    assert "手動で固定" in page.inner_text("#stage")
    assert "移行プロジェクト完了" in page.inner_text("#stage-history")
    with console.runtime.engine.connect() as connection:
        stage = connection.execute(
            select(customers.c.stage, customers.c.stage_source).where(
                customers.c.external_id == "loop-1"
            )
        ).one()
        audit = connection.execute(
            select(audit_log.c.actor, audit_log.c.action).where(
                audit_log.c.action == "customer.stage"
            )
        ).all()
    assert tuple(stage) == ("self_sufficient", "pinned")
    assert [tuple(a) for a in audit] == [(USERS["csm"], "customer.stage")]

    english = console.page("csm", "en")
    english.goto(f"{console.base_url}/console/customers/loop-1")
    assert english.inner_text("#stage-badge") == "Self-sufficient"
    assert "pinned by hand" in english.inner_text("#stage")
    english.screenshot(path=str(SCREENSHOTS / "customer-loop-en.png"), full_page=True)


def test_a_viewer_sees_the_stage_but_cannot_set_it(console: Console) -> None:
    a_customer_in_the_loop(console, "loop-2")
    page = console.page("viewer", "en")
    page.goto(f"{console.base_url}/console/customers/loop-2")
    assert page.inner_text("#stage-badge") == "Onboarded"
    assert page.locator("#set-stage").count() == 0
    refused = page.request.post(
        f"{console.base_url}/console/customers/loop-2/stage", form={"stage": "active"}
    )
    assert refused.status in (403, 400)
    with console.runtime.engine.connect() as connection:
        stage = connection.execute(
            select(customers.c.stage).where(customers.c.external_id == "loop-2")
        ).scalar()
    assert stage == "established"
