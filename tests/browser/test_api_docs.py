"""Swagger UI at /docs and ReDoc at /redoc render every operation in headless Chromium with the
network cut off: any request that is not to the app on loopback is aborted and counted, and
the strict CSP must not be violated once. Locally a missing chromium or Playwright skips these
tests; in CI (CI=true) it fails them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import build_runtime
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.environment import make_settings
from tests.support.live_server import serving


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """The app served by uvicorn on a loopback port."""
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    runtime = build_runtime(make_settings(tmp_path, url))
    with serving(create_app(runtime)) as base:
        yield base
    runtime.close()


class OfflinePage:
    """A page whose requests may reach only ``origin``; everything else is aborted and kept,
    as are console errors (CSP violations among them) and uncaught exceptions."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.origin = origin
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page()
        self.page.route("**/*", self._only_origin)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _only_origin(self, route: Any) -> None:
        parts = urlsplit(route.request.url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def operations(base_url: str) -> list[tuple[str, str]]:
    document = httpx.get(f"{base_url}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_swagger_ui_renders_every_operation_offline(browser: Any, base_url: str) -> None:
    expected = operations(base_url)
    page = OfflinePage(browser, base_url)
    page.page.goto(f"{base_url}/docs")
    blocks = page.page.locator(".opblock")
    blocks.nth(len(expected) - 1).wait_for()
    assert blocks.count() == len(expected)
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert shown == set(expected)
    assert page.blocked == [] and page.errors == []


def test_swagger_ui_tries_an_operation_against_this_server(browser: Any, base_url: str) -> None:
    page = OfflinePage(browser, base_url)
    page.page.goto(f"{base_url}/docs")
    healthz = page.page.locator("#operations-ops-healthz_healthz_get")
    healthz.locator(".opblock-summary").click()
    healthz.get_by_role("button", name="Try it out").click()
    healthz.get_by_role("button", name="Execute").click()
    status = healthz.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert page.blocked == [] and page.errors == []


def test_redoc_renders_every_operation_offline(browser: Any, base_url: str) -> None:
    expected = operations(base_url)
    page = OfflinePage(browser, base_url)
    page.page.goto(f"{base_url}/redoc")
    sections = page.page.locator("[data-section-id^='operation/']")
    sections.nth(len(expected) - 1).wait_for()
    assert sections.count() == len(expected)
    page.page.wait_for_load_state("networkidle")
    assert page.blocked == [] and page.errors == []
