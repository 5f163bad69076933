"""The unsubscribe page in a real headless browser (Debian's chromium driven by Playwright),
against the app served by uvicorn, opened from the link of a real mail in the outbox.

JavaScript is switched off in the browser: the page must work with plain forms. Locally a
missing chromium or Playwright skips these tests; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import email
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import subscription_preferences, suppressions
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.transports.outbox import OutboxTransport
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.delivery import run_due
from tests.support.environment import make_settings
from tests.support.journeys import TOPICS, write_journeys
from tests.support.signups import outbox_files, signed_headers, signup_payload

TEXT = {
    "ja": {
        "title": "メール配信の設定",
        "saved": "配信設定を保存しました。",
        "unsubscribed": "配信を停止しました",
        "resubscribed": "配信を再開しました。",
        "invalid": "このリンクは無効です",
        "browser_locale": "ja-JP",
    },
    "en": {
        "title": "Email preferences",
        "saved": "Your choices are saved.",
        "unsubscribed": "You are unsubscribed",
        "resubscribed": "You are subscribed again.",
        "invalid": "This link is not valid",
        "browser_locale": "en-US",
    },
}


@dataclass
class LiveApp:
    runtime: Runtime
    base_url: str


@pytest.fixture
def live(tmp_path: Path, database_url: str, clock: FrozenClock) -> Iterator[LiveApp]:
    """The app on a real port, with a base URL that makes the mails' links point at it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    journeys = write_journeys(tmp_path / "journeys", TOPICS)
    settings = make_settings(
        tmp_path, database_url, journeys_dir=journeys, public_base_url=base_url
    )
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield LiveApp(runtime, base_url)
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()
    runtime.close()


def link_from_a_real_mail(live: LiveApp, locale: str) -> str:
    """Sign up over HTTP, send the day-0 mails, and take the footer's link from one of them."""
    body = json.dumps(signup_payload(f"browser-{locale}", locale=locale)).encode()
    response = httpx.post(
        f"{live.base_url}/hooks/signup",
        content=body,
        headers=signed_headers(body, timestamp=int(live.runtime.clock.now().timestamp())),
    )
    assert response.status_code == 202, response.text
    assert run_due(live.runtime) == ["sent", "sent"]
    mail = email.message_from_bytes(outbox_files(live.runtime.settings)[0].read_bytes())
    html_part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    html = html_part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    links = re.findall(rf'href="({re.escape(live.base_url)}/unsubscribe/[^"]+)"', html)
    assert links, "the footer has no unsubscribe link"
    assert mail["List-Unsubscribe"] == f"<{links[0]}>"
    return str(links[0])


def stored(live: LiveApp) -> tuple[Any, list[Any]]:
    with live.runtime.engine.connect() as connection:
        suppression = connection.execute(
            select(suppressions.c.reason, suppressions.c.source)
        ).first()
        preferences = connection.execute(
            select(subscription_preferences.c.topic, subscription_preferences.c.subscribed)
        ).all()
    return (None if suppression is None else tuple(suppression)), sorted(map(tuple, preferences))


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_the_unsubscribe_page_in_a_real_browser(live: LiveApp, locale: str, tmp_path: Path) -> None:
    sync_playwright = require_browser()
    text = TEXT[locale]
    link = link_from_a_real_mail(live, locale)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=CHROMIUM_ARGS,
        )
        context = browser.new_context(
            java_script_enabled=False,
            locale=text["browser_locale"],
            viewport={"width": 800, "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            # The page: the customer's language, both journeys by name, both subscribed.
            response = page.goto(link)
            assert response is not None and response.status == 200
            assert page.get_attribute("html", "lang") == locale
            assert page.inner_text("#status") == text["title"]
            tips = page.get_by_label("Product tips <b>&</b> tricks")
            news = page.get_by_label("Monthly news")
            assert tips.is_checked() and news.is_checked()
            page.screenshot(path=str(tmp_path / f"unsubscribe-{locale}.png"), full_page=True)

            # Choose a topic: keep the tips, stop the news.
            news.uncheck()
            with page.expect_navigation():
                page.click("#save")
            assert page.inner_text("#notice") == text["saved"]
            assert page.get_by_label("Product tips <b>&</b> tricks").is_checked()
            assert not page.get_by_label("Monthly news").is_checked()
            assert stored(live) == (None, [("news", False), ("tips", True)])

            # Unsubscribe from everything, then change one's mind.
            with page.expect_navigation():
                page.click("#unsubscribe-all")
            assert page.inner_text("#status") == text["unsubscribed"]
            assert stored(live)[0] == ("unsubscribe", "one-click")
            with page.expect_navigation():
                page.click("#resubscribe")
            assert page.inner_text("#notice") == text["resubscribed"]
            assert page.inner_text("#status") == text["title"]
            assert stored(live)[0] is None

            # A tampered link: a small page, in the browser's language, with a 400.
            flipped = "A" if link[-6] != "A" else "B"  # inside the signature's base64
            tampered = page.goto(link[:-6] + flipped + link[-5:])
            assert tampered is not None and tampered.status == 400
            assert page.inner_text("#status") == text["invalid"]
        finally:
            context.close()
            browser.close()
