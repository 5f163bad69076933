"""The console's journey page in a real browser: the journey's versions (who started on and
follows each) and the plan of a change its file holds, before and after it is applied, and a
change that is refused because a step vanished."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from orchestrator.accounts.roles import Role
from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import build_runtime
from orchestrator.services.accounts import add_user
from orchestrator.transports.outbox import OutboxTransport
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.console import FAST, PASSWORD
from tests.support.environment import ROOT, START, make_settings
from tests.support.journeys import write_journeys
from tests.support.versions import FLOW, enroll, flow_folders

SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
ADMIN = "admin@acme.example"


def _text(page: Any, selector: str) -> str:
    return " ".join(str(page.inner_text(selector)).split())


def test_the_journey_page_shows_versions_and_the_plan_of_a_pending_change(
    tmp_path: Path,
) -> None:
    sync_playwright = require_browser()
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    journeys, templates = flow_folders(tmp_path)
    settings = make_settings(
        tmp_path, url, journeys_dir=journeys, templates_dir=templates, public_base_url=base
    )
    clock = FrozenClock(START)
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    add_user(runtime.engine, ADMIN, Role.ADMIN, PASSWORD, hasher=FAST, clock=clock)
    for n in range(3):
        enroll(runtime, f"c{n}")
    write_journeys(journeys, {"flow": FLOW.replace("after: 3d", "after: 4d")})
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(locale="en-US").new_page()
                page.set_default_timeout(15_000)
                page.goto(f"{base}/console/login")
                page.fill("#email", ADMIN)
                page.fill("#password", PASSWORD)
                with page.expect_navigation():
                    page.click("#sign-in")

                page.goto(f"{base}/console/journeys/flow")
                assert "version 1" in _text(page, "#version-1")
                assert "current" in _text(page, "#version-1")
                assert "flow: version 1 → version 2 (in_flight: follow_latest)" in _text(
                    page, "#pending-headline"
                )
                assert "faq: 3d → 4d, 3 pending row(s) rescheduled" in _text(page, "#pending-plan")
                assert "Applying it changes what customers in flight get." in _text(
                    page, "#pending-change"
                )
                page.screenshot(
                    path=str(SCREENSHOTS / "journey-versions-pending.png"), full_page=True
                )

                runtime.catalog.refresh()  # a process applies it
                page.reload()
                assert "current" in _text(page, "#version-2")
                assert "replaced" in _text(page, "#version-1")
                row = [_text(page, f"#version-1 td:nth-child({n})") for n in (4, 5)]
                assert row == ["3", "0"]  # started on version 1, none follows it now
                assert "nothing is pending" in _text(page, "#pending-change")

                write_journeys(journeys, {"flow": FLOW.replace("id: faq\n", "id: questions\n")})
                runtime.catalog.refresh()  # refused: faq vanished with rows waiting
                page.reload()
                assert "not applied" in _text(page, "#version-3")
                assert "step faq vanished while 3 row(s) wait for it" in _text(page, "#version-3")
                assert "Not applied: a step vanished" in _text(page, "#pending-blocked")
                assert "VANISHED: faq, 3 pending row(s)" in _text(page, "#pending-plan")
                page.screenshot(
                    path=str(SCREENSHOTS / "journey-versions-blocked.png"), full_page=True
                )

                japanese = browser.new_context(locale="ja-JP").new_page()
                japanese.goto(f"{base}/console/login")
                japanese.fill("#email", ADMIN)
                japanese.fill("#password", PASSWORD)
                with japanese.expect_navigation():
                    japanese.click("#sign-in")
                japanese.goto(f"{base}/console/journeys/flow")
                assert "バージョン履歴" in _text(japanese, "#versions-title")
                assert "未適用の変更" in _text(japanese, "#pending-title")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
        runtime.close()
