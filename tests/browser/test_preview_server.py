"""``stepmail preview serve`` in a real headless browser: a step's page shows every tier ×
locale, and saving a template updates the page in place (no reload) — the subject, the mail in
its frame, a syntax error shown where the mail was with its file and line, and the mail again
once the error is fixed. Locally a missing chromium or Playwright skips this; in CI it fails."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from orchestrator.clock import SystemClock
from orchestrator.tools.preview_server import PreviewState, create_preview_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.environment import ROOT, STANDARD_JOURNEYS, make_settings

WAIT_MS = 15_000  # how long the browser may take to notice (never asserted as a duration)


@dataclass
class Served:
    base_url: str
    templates: Path
    browser: Any


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    sync_playwright = require_browser()
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(STANDARD_JOURNEYS, journeys)
    shutil.copytree(ROOT / "templates" / "mail", templates)
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'unused.db'}",
        journeys_dir=journeys,
        templates_dir=templates,
    )
    state = PreviewState(settings, SystemClock(), recheck_after=0.05)
    app = create_preview_app(state, poll_interval=0.05, stream_for=60)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Served(base_url, templates, browser)
        finally:
            browser.close()
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()


def frame_text(page: Any, tier: str, locale: str) -> str:
    frame = page.frame_locator(f"figure[data-tier='{tier}'][data-locale='{locale}'] iframe")
    return str(frame.locator("body").inner_text(timeout=WAIT_MS))


def caption(page: Any, tier: str, locale: str) -> str:
    return str(page.inner_text(f"figure[data-tier='{tier}'][data-locale='{locale}'] figcaption"))


def wait_until(page: Any, expression: str) -> None:
    """Poll ``expression`` from outside the page: the page's CSP (no eval) forbids
    Playwright's in-page wait_for_function, and it must: live.js has to work under it."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(50)


def test_saving_a_template_updates_the_open_page_in_place(served: Served) -> None:
    page = served.browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None
    )
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{served.base_url}/")
    with page.expect_navigation():  # waits for the step page's load: all six mails parsed
        page.click("text=welcome")
    assert page.url == f"{served.base_url}/journeys/onboarding/welcome"
    shown = {
        (f.get_attribute("data-tier"), f.get_attribute("data-locale"))
        for f in page.query_selector_all("figure.mail")
    }
    assert shown == {(t, lang) for t in ("high", "low", "tech") for lang in ("ja", "en")}
    assert "Welcome to Relay" in caption(page, "low", "en")
    assert "Thanks for choosing Relay" in frame_text(page, "low", "en")
    page.wait_for_selector("#live-status.live:not(.off)", timeout=WAIT_MS)
    page.evaluate("window.notReloaded = true")

    path = served.templates / "onboarding" / "welcome.low.en.html"
    original = path.read_text("utf-8")
    path.write_text(
        original.replace("join a live onboarding session", "a session, edited live").replace(
            "<p>Thanks for choosing", "<p>Freshly saved paragraph.</p>\n<p>Thanks for choosing"
        ),
        "utf-8",
    )
    wait_until(page, "Number(document.body.dataset.refreshed || 0) >= 1")
    wait_until(
        page,
        "document.querySelector(\"figure[data-tier='low'][data-locale='en'] figcaption\")"
        ".innerText.includes('edited live')",
    )
    assert "Freshly saved paragraph." in frame_text(page, "low", "en")
    assert "edited live" not in caption(page, "tech", "en")  # other templates untouched
    assert page.evaluate("window.notReloaded") is True  # swapped in, not reloaded

    broken = original + "\n{% if %}\n"
    path.write_text(broken, "utf-8")
    error = page.wait_for_selector(
        "figure[data-tier='low'][data-locale='en'] pre.error", timeout=WAIT_MS
    )
    line = len(broken.splitlines())
    assert f"{path}:{line}: Expected an expression" in error.inner_text()

    path.write_text(original, "utf-8")
    page.wait_for_selector("figure[data-tier='low'][data-locale='en'] iframe", timeout=WAIT_MS)
    assert "Thanks for choosing Relay" in frame_text(page, "low", "en")
    assert page.evaluate("window.notReloaded") is True
    assert errors == []
