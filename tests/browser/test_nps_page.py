"""The NPS page in a real headless browser (Debian's chromium driven by Playwright), against
the app served by uvicorn, opened from a score link of a real day-30 mail in the outbox.

JavaScript is off: the page works with a plain form. Opening the link records nothing; the
button does. Locally a missing chromium or Playwright skips these tests; in CI it fails them.
"""

from __future__ import annotations

import email
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from orchestrator.db.tables import survey_responses, usage_events
from tests.browser.test_unsubscribe_page import LiveApp, live  # noqa: F401 (the fixture)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.delivery import run_due
from tests.support.signups import outbox_files, signed_headers, signup_payload

FEEDBACK = """\
name: Feedback
steps:
  - id: day_30
    after: 0d
    template: onboarding/feedback
    survey: nps
"""
TEXT = {
    "ja": {
        "question": "友人や同僚にすすめる可能性",
        "not_yet": "まだ回答は送信されていません",
        "thanks": "ご回答ありがとうございました（3 点）",
        "invalid": "このリンクは無効です",
        "browser_locale": "ja-JP",
    },
    "en": {
        "question": "How likely are you to recommend",
        "not_yet": "Your answer is not sent yet",
        "thanks": "Thank you for your answer (3)",
        "invalid": "This link is not valid",
        "browser_locale": "en-US",
    },
}


@pytest.fixture(autouse=True)
def _feedback_journey(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live fixture writes tests.support.journeys.TOPICS: here, a feedback journey."""
    import tests.browser.test_unsubscribe_page as unsubscribe_page

    monkeypatch.setattr(unsubscribe_page, "TOPICS", {"feedback": FEEDBACK})


def score_links(app: LiveApp, locale: str) -> list[str]:
    body = json.dumps(signup_payload(f"nps-{locale}", locale=locale)).encode()
    response = httpx.post(
        f"{app.base_url}/hooks/signup",
        content=body,
        headers=signed_headers(body, timestamp=int(app.runtime.clock.now().timestamp())),
    )
    assert response.status_code == 202, response.text
    assert run_due(app.runtime) == ["sent"]
    mail = email.message_from_bytes(outbox_files(app.runtime.settings)[0].read_bytes())
    html_part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    html = html_part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    links = re.findall(rf'href="({re.escape(app.base_url)}/nps/[^"]+)"', html)
    assert len(links) == 11, "the mail has no 0-10 scale"
    return [link.replace("&amp;", "&") for link in links]


def stored(app: LiveApp) -> tuple[list[tuple[int, str | None]], int]:
    with app.runtime.engine.connect() as connection:
        answers = connection.execute(select(survey_responses.c.score, survey_responses.c.comment))
        events = connection.execute(
            select(usage_events.c.id).where(usage_events.c.name == "nps_submitted")
        ).all()
        return [(a.score, a.comment) for a in answers], len(events)


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_the_nps_page_in_a_real_browser(live: LiveApp, locale: str, tmp_path: Path) -> None:  # noqa: F811
    sync_playwright = require_browser()
    text = TEXT[locale]
    links = score_links(live, locale)

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
            # The mail's "9": the page shows 9 chosen, in the customer's language; nothing kept.
            response = page.goto(links[9])
            assert response is not None and response.status == 200
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert page.get_attribute("html", "lang") == locale
            assert text["question"] in page.inner_text("#status")
            assert text["not_yet"] in page.inner_text("main")
            assert page.is_checked("#score-9")
            page.screenshot(path=str(tmp_path / f"nps-{locale}.png"), full_page=True)
            assert stored(live) == ([], 0)

            # Change one's mind to 3, add a comment, send.
            page.check("#score-3")
            page.fill("#comment", "レポートが遅い / reports are slow")
            with page.expect_navigation():
                page.click("#send")
            assert text["thanks"] in page.inner_text("#notice")
            assert page.is_checked("#score-3")
            assert stored(live) == ([(3, "レポートが遅い / reports are slow")], 1)

            # Back and send the same answer again: it is stored once.
            page.go_back()
            page.check("#score-3")
            page.fill("#comment", "レポートが遅い / reports are slow")
            with page.expect_navigation():
                page.click("#send")
            assert stored(live)[1] == 1

            # A tampered link: a small page with a 400, nothing stored.
            link = links[5].split("?")[0]
            flipped = "A" if link[-6] != "A" else "B"
            tampered = page.goto(link[:-6] + flipped + link[-5:] + "?score=5")
            assert tampered is not None and tampered.status == 400
            assert page.inner_text("#status") == text["invalid"]
            assert stored(live)[1] == 1
        finally:
            context.close()
            browser.close()
