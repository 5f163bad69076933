"""The operator console in a real headless browser (Debian's chromium driven by Playwright),
against the app served by uvicorn: sign-in, every page in Japanese and English, what a
customer got, previews per tier, a test send, pause and resume, a CSM closing a task, and the
refusals (a viewer's action, a form without its CSRF token, an ended session, a throttled
sign-in). Screenshots of the main pages are kept in ``var/test-artifacts/screenshots/``.

One server and one browser serve the whole module (a fresh browser context per test); the
database is SQLite (the services' tests run on both databases). The clock is frozen and only
moves forward, so each test signs up its own customers. Locally a missing chromium or
Playwright skips these tests; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import csv
import email
import email.header
import email.policy
import io
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator.accounts.passwords import make_hasher
from orchestrator.accounts.roles import Role
from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import audit_log, csm_tasks, enrollments, scheduled_sends
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.services.accounts import add_user
from orchestrator.services.analytics import refresh_band_snapshot, refresh_rollups
from orchestrator.transports.outbox import OutboxTransport
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.delivery import run_due
from tests.support.environment import ROOT, START, make_settings
from tests.support.live_server import base_url_of, loopback_listener, serving_on
from tests.support.signups import outbox_files, signed_headers

SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
API_KEY = "browser-test-api-key"
USERS = {
    "admin": "admin@acme.example",
    "editor": "editor@acme.example",
    "csm": "csm@acme.example",
    "viewer": "viewer@acme.example",
    "throttled": "forgetful@acme.example",
}
# What each page's <h1> says, per language: proof the page rendered, in that language.
HEADINGS = {
    "ja": {
        "home": "ホーム",
        "customers": "顧客",
        "inbox": "CSM 受信箱",
        "journeys": "ジャーニー",
        "suppressions": "運用",
        "audit": "監査ログ",
        "login": "Stepmail コンソールにサインイン",
    },
    "en": {
        "home": "Home",
        "customers": "Customers",
        "inbox": "CSM inbox",
        "journeys": "Journeys",
        "suppressions": "Operations",
        "audit": "Audit log",
        "login": "Sign in to the Stepmail console",
    },
}
WIDTHS = {"laptop": 1280, "tablet": 800}


@dataclass
class Console:
    runtime: Runtime
    clock: FrozenClock
    base_url: str
    browser: Any

    def signup(self, external_id: str, **overrides: Any) -> None:
        payload: dict[str, Any] = {
            "external_id": external_id,
            "email": f"{external_id}@customer.example",
            "name": "山田 太郎",
            "company": "株式会社サンプル",
            "annual_contract_value": 360000,
            "locale": "ja",
            "timezone": "Asia/Tokyo",
            **overrides,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = signed_headers(body, timestamp=int(self.clock.now().timestamp()))
        answer = httpx.post(f"{self.base_url}/hooks/signup", content=body, headers=headers)
        assert answer.status_code == 202, answer.text

    def track(self, external_id: str, name: str, **properties: Any) -> None:
        answer = httpx.post(
            f"{self.base_url}/v1/events",
            json={"external_id": external_id, "name": name, "properties": properties},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert answer.status_code == 202, answer.text

    def page(
        self,
        role: str | None = "admin",
        lang: str = "ja",
        *,
        javascript: bool = True,
        width: int = WIDTHS["laptop"],
    ) -> Any:
        """A fresh browser context (its own cookies), signed in as ``role`` unless None."""
        context = self.browser.new_context(
            locale={"ja": "ja-JP", "en": "en-US"}[lang],
            java_script_enabled=javascript,
            viewport={"width": width, "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm questions
        if role is not None:
            self.sign_in(page, USERS[role])
        return page

    def sign_in(self, page: Any, address: str, password: str = PASSWORD) -> Any:
        page.goto(f"{self.base_url}/console/login")
        page.fill("#email", address)
        page.fill("#password", password)
        with page.expect_navigation():
            page.click("#sign-in")
        return page

    def sends(self, external_id: str) -> dict[str, str]:
        query = (
            select(scheduled_sends.c.step_id, scheduled_sends.c.state)
            .join(enrollments, enrollments.c.id == scheduled_sends.c.enrollment_id)
            .where(scheduled_sends.c.journey_id == "onboarding")
            .where(enrollments.c.customer_id == _customer_id(self.runtime, external_id))
        )
        with self.runtime.engine.connect() as connection:
            return {step: state for step, state in connection.execute(query)}


def _customer_id(runtime: Runtime, external_id: str) -> int:
    from orchestrator.db.tables import customers

    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(customers.c.id).where(customers.c.external_id == external_id)
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    sync_playwright = require_browser()
    tmp = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp / 'stepmail.db'}"
    upgrade(url)
    listener = loopback_listener()
    base_url = base_url_of(listener)
    settings = make_settings(tmp, url, public_base_url=base_url, api_key=API_KEY)
    clock = FrozenClock(START)
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    hasher = make_hasher()
    for role, address in USERS.items():
        chosen = Role.VIEWER if role == "throttled" else Role(role)
        add_user(runtime.engine, address, chosen, PASSWORD, hasher=hasher, clock=clock)
    try:
        with serving_console(runtime, clock, listener, sync_playwright) as console:
            yield console
    finally:
        runtime.close()


@contextmanager
def serving_console(
    runtime: Runtime, clock: FrozenClock, listener: socket.socket, sync_playwright: Any
) -> Iterator[Console]:
    """``runtime``'s app on ``listener`` (bound first: its address is the settings'
    PUBLIC_BASE_URL) and a Chromium to read it with."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with serving_on(listener, create_app(runtime)), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Console(runtime, clock, base_url_of(listener), browser)
        finally:
            browser.close()


def heading(page: Any) -> str:
    return str(page.inner_text("h1")).strip()


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


# -- sign-in and every page ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_signing_in_and_every_page_renders_in_each_language(console: Console, lang: str) -> None:
    console.signup(
        f"pages-{lang}",
        locale=lang,
        annual_contract_value=3_600_000,
        csm_name="佐藤 花子",
        csm_email=USERS["csm"],
    )
    run_due(console.runtime)
    console.track(f"pages-{lang}", "nps_submitted", score=3)  # a detractor: a CSM task

    for device, width in WIDTHS.items():
        page = console.page(None, lang, width=width)
        problems: list[str] = []
        page.on("console", lambda message, seen=problems: seen.append(message.text))
        response = page.goto(f"{console.base_url}/console/customers")
        assert page.url.startswith(f"{console.base_url}/console/login?next=")  # signed out
        assert response is not None and response.status == 200
        assert page.get_attribute("html", "lang") == lang
        assert heading(page) == HEADINGS[lang]["login"]
        page.fill("#email", USERS["admin"])
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("#sign-in")
        assert page.url == f"{console.base_url}/console/customers"  # back where it started

        pages = {
            "home": "/console/",
            "customers": "/console/customers",
            "customer": f"/console/customers/pages-{lang}",
            "inbox": "/console/inbox?scope=team",
            "journeys": "/console/journeys",
            "journey": "/console/journeys/onboarding?tier=high",
            "preview": f"/console/journeys/onboarding/steps/welcome?tier=high&locale={lang}",
            "suppressions": "/console/operations/suppressions",
            "unknown-sends": "/console/operations/unknown-sends",
            "provider-events": "/console/operations/provider-events",
            "audit": "/console/audit",
        }
        for name, path in pages.items():
            response = page.goto(console.base_url + path)
            assert response is not None and response.status == 200, (name, response.status)
            assert page.get_attribute("html", "lang") == lang
            if name in HEADINGS[lang]:
                assert heading(page) == HEADINGS[lang][name], name
            assert no_horizontal_scroll(page), f"{name} scrolls sideways at {width}px"
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{lang}-{device}.png"), full_page=True)
        assert not [p for p in problems if "Content Security Policy" in p], problems
        page.context.close()


def test_the_language_is_switched_and_remembered(console: Console) -> None:
    page = console.page("viewer", "ja")
    page.goto(f"{console.base_url}/console/journeys")
    assert heading(page) == "ジャーニー"
    with page.expect_navigation():
        page.click("a.language[lang='en']")
    assert page.url == f"{console.base_url}/console/journeys"
    assert heading(page) == "Journeys"
    page.goto(f"{console.base_url}/console/customers")  # remembered (a cookie)
    assert heading(page) == "Customers" and page.get_attribute("html", "lang") == "en"
    page.context.close()


# -- what a customer got ---------------------------------------------------------------------


def test_a_customers_timeline_shows_the_subject_of_the_mail_they_got(console: Console) -> None:
    console.signup("timeline-1", locale="en", name="Emily Carter", company="Northwind")
    before = set(outbox_files(console.runtime.settings))
    run_due(console.runtime)
    mail_file = next(p for p in outbox_files(console.runtime.settings) if p not in before)
    mail = email.message_from_bytes(mail_file.read_bytes())
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))

    page = console.page("viewer", "en")
    page.goto(f"{console.base_url}/console/customers/timeline-1")
    timeline = page.inner_text("#timeline")
    assert subject in timeline
    assert subject in page.inner_text("#step-1-welcome, [id$='-welcome']")
    page.screenshot(path=str(SCREENSHOTS / "customer-timeline-en.png"), full_page=True)
    page.context.close()


def test_customers_are_found_by_the_start_of_their_company(console: Console) -> None:
    console.signup("search-1", company="東都ロジスティクス株式会社")
    page = console.page("viewer", "ja")
    page.goto(f"{console.base_url}/console/customers")
    page.fill("#q", "東都ロジ")
    page.select_option("#field", "company")
    with page.expect_navigation():
        page.click("form.search button[type='submit']")
    assert "search-1" in page.inner_text("#customer-results")
    page.context.close()


# -- previews and test sends -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "company", "from_csm"),
    [
        ("high", "東都ロジスティクス株式会社", True),
        ("low", "株式会社みなと企画", False),
        ("tech", "合同会社あおばデザイン", False),
    ],
)
def test_the_preview_renders_per_tier(
    console: Console, tier: str, company: str, from_csm: bool
) -> None:
    page = console.page("viewer", "ja")
    url = f"{console.base_url}/console/journeys/onboarding/steps/welcome?tier={tier}&locale=ja"
    response = page.goto(url)
    assert response is not None and response.status == 200
    headers = page.inner_text("#mail-headers")
    assert ("佐藤 花子 (Acme Cloud)" in headers) is from_csm
    assert ("List-Unsubscribe" in headers and "Reply-To" in headers) or not from_csm
    frame = page.frame_locator("#mail-frame")
    assert company in frame.locator("body").inner_text()
    assert company in page.inner_text("#mail-text")
    assert page.get_attribute("#mail-frame", "sandbox") == ""
    page.screenshot(path=str(SCREENSHOTS / f"preview-{tier}-ja.png"), full_page=True)
    page.context.close()


def test_a_test_send_lands_in_the_outbox_marked_as_a_test(console: Console) -> None:
    with console.runtime.engine.connect() as connection:
        rows_before = connection.execute(select(func.count()).select_from(scheduled_sends)).scalar()
    before = set(outbox_files(console.runtime.settings))
    page = console.page("editor", "en")
    page.goto(f"{console.base_url}/console/journeys/onboarding/steps/basics?tier=low&locale=en")
    with page.expect_navigation():
        page.click("#send-test")
    assert "A test mail is on its way" in page.inner_text("#notice")

    new = [p for p in outbox_files(console.runtime.settings) if p not in before]
    assert len(new) == 1 and new[0].name.startswith("stepmail-test-onboarding-basics-")
    mail = email.message_from_bytes(new[0].read_bytes())
    assert str(mail["Subject"]).startswith("[TEST] ")
    assert mail["X-Stepmail-Test"] == "1"
    assert mail["To"] == USERS["editor"]
    with console.runtime.engine.connect() as connection:
        rows_after = connection.execute(select(func.count()).select_from(scheduled_sends)).scalar()
        audited = (
            connection.execute(
                select(audit_log.c.actor).where(audit_log.c.action == "step.test_send")
            )
            .scalars()
            .all()
        )
    assert rows_after == rows_before  # no enrollment, nothing scheduled, nothing counted
    assert USERS["editor"] in audited
    page.context.close()


# -- actions ---------------------------------------------------------------------------------


def test_pause_stops_the_next_step_and_resume_sends_it_without_javascript(
    console: Console,
) -> None:
    console.signup("pause-1")
    run_due(console.runtime)
    assert console.sends("pause-1")["welcome"] == "sent"
    page = console.page("editor", "en", javascript=False)
    page.goto(f"{console.base_url}/console/customers/pause-1")
    with page.expect_navigation():
        page.click("button[id^='pause-']")
    assert "paused" in page.inner_text("#notice")

    console.clock.advance(timedelta(days=2))  # basics (day 1) was due: held
    run_due(console.runtime)
    assert console.sends("pause-1")["basics"] == "paused"
    console.sign_in(page, USERS["editor"])  # two days idle: the session has ended
    page.goto(f"{console.base_url}/console/customers/pause-1")
    assert "paused" in page.inner_text("[id$='-basics']")
    with page.expect_navigation():
        page.click("button[id^='resume-']")
    assert console.sends("pause-1")["basics"] == "pending"

    console.clock.advance(timedelta(days=1))  # a day after the welcome, counting the pause out
    run_due(console.runtime)
    assert console.sends("pause-1")["basics"] == "sent"
    console.sign_in(page, USERS["editor"])
    page.goto(f"{console.base_url}/console/customers/pause-1")
    assert "sent" in page.inner_text("[id$='-basics']")
    page.context.close()


def test_a_csm_closes_a_task_from_their_inbox(console: Console) -> None:
    console.signup(
        "task-1", annual_contract_value=3_600_000, csm_name="佐藤 花子", csm_email=USERS["csm"]
    )
    console.track("task-1", "nps_submitted", score=2)
    with console.runtime.engine.connect() as connection:
        task_id = connection.execute(
            select(csm_tasks.c.id).where(
                csm_tasks.c.customer_id == _customer_id(console.runtime, "task-1")
            )
        ).scalar_one()

    page = console.page("csm", "ja")
    page.goto(f"{console.base_url}/console/inbox")  # mine
    assert "nps_detractor" in page.inner_text(f"#task-{task_id}")
    page.goto(f"{console.base_url}/console/tasks/{task_id}")
    page.fill("#note", "電話で状況を確認。来週フォローアップ。")
    with page.expect_navigation():
        page.click("#add-note")
    assert "電話で状況を確認" in page.inner_text("#notes")
    with page.expect_navigation():
        page.click("#close-task")
    assert page.inner_text("#notice") == "タスクを完了にしました。"
    with console.runtime.engine.connect() as connection:
        state = connection.execute(
            select(csm_tasks.c.status).where(csm_tasks.c.id == task_id)
        ).scalar_one()
        actions = (
            connection.execute(select(audit_log.c.action).where(audit_log.c.actor == USERS["csm"]))
            .scalars()
            .all()
        )
    assert state == "closed"
    assert {"task.note", "task.close"} <= set(actions)
    page.context.close()


# -- refusals --------------------------------------------------------------------------------


def csrf_of(page: Any) -> str:
    return str(page.get_attribute("form[action$='/logout'] input[name='csrf_token']", "value"))


def test_a_viewer_is_refused_an_action(console: Console) -> None:
    console.signup("viewer-1")
    enrollment = _onboarding_enrollment(console, "viewer-1")
    page = console.page("viewer", "en")
    page.goto(f"{console.base_url}/console/customers/viewer-1")
    assert page.locator("button[id^='pause-']").count() == 0  # not offered
    answer = page.request.post(
        f"{console.base_url}/console/enrollments/{enrollment}/pause",
        form={"csrf_token": csrf_of(page), "back": "/console/"},
        headers={"Origin": console.base_url, "Accept-Language": "en"},
    )
    assert answer.status == 403
    assert "You may not do this" in answer.text()
    assert _enrollment_state(console, enrollment) == "active"
    page.context.close()


def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    console.signup("csrf-1")
    enrollment = _onboarding_enrollment(console, "csrf-1")
    page = console.page("admin", "en")
    page.goto(f"{console.base_url}/console/customers/csrf-1")
    url = f"{console.base_url}/console/enrollments/{enrollment}/pause"
    origin = {"Origin": console.base_url}
    without = page.request.post(url, form={"back": "/console/"}, headers=origin)
    wrong = page.request.post(url, form={"csrf_token": "x" * 43}, headers=origin)
    elsewhere = page.request.post(
        url, form={"csrf_token": csrf_of(page)}, headers={"Origin": "https://evil.example"}
    )
    assert (without.status, wrong.status, elsewhere.status) == (403, 403, 403)
    assert _enrollment_state(console, enrollment) == "active"
    right = page.request.post(url, form={"csrf_token": csrf_of(page)}, headers=origin)
    assert right.status == 200 and _enrollment_state(console, enrollment) == "paused"
    page.context.close()


def test_signing_out_ends_the_session_at_once(console: Console) -> None:
    page = console.page("admin", "en")
    cookies = page.context.cookies()
    with page.expect_navigation():
        page.click("#logout")
    assert page.url.startswith(f"{console.base_url}/console/login")
    assert "You are signed out" in page.inner_text("#notice")

    replay = console.browser.new_context()
    replay.add_cookies(cookies)  # the old cookie, from another browser
    other = replay.new_page()
    other.goto(f"{console.base_url}/console/customers")
    assert other.url.startswith(f"{console.base_url}/console/login")
    replay.close()
    page.context.close()


def test_sign_ins_are_throttled_after_repeated_failures(console: Console) -> None:
    page = console.page(None, "en")
    for _ in range(console.runtime.settings.console_login_attempts):
        console.sign_in(page, USERS["throttled"], "not the password")
        assert page.inner_text("#login-error") == "The address or the password is wrong."
    console.sign_in(page, "nobody@acme.example", "not the password")  # the same answer
    assert page.inner_text("#login-error") == "The address or the password is wrong."

    console.sign_in(page, USERS["throttled"])  # the right password, too late
    assert "Too many failed sign-ins" in page.inner_text("#login-error")
    assert page.url.startswith(f"{console.base_url}/console/login")
    console.clock.advance(timedelta(seconds=console.runtime.settings.console_login_window + 1))
    console.sign_in(page, USERS["throttled"])
    assert heading(page) in ("Home", "ホーム")
    page.context.close()


# -- analytics: the overview and a journey's funnel -------------------------------------------

BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"


def _tracked_links(console: Console, mail_file: Any) -> list[str]:
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=email.policy.default)
    body = mail.get_body(("html",))
    assert body is not None
    pattern = re.escape(console.base_url) + r"/r/[^\"]+"
    return re.findall(pattern, str(body.get_content()))


def test_the_funnel_shows_exactly_the_counts_of_a_seeded_data_set(console: Console) -> None:
    """On a day of their own (the clock moves on 61 days): three sign-ups get the welcome, one
    reader clicks a link in it, a scanner walks another's links, one converts. The funnel
    page, its tier filter, its CSV and the overview show exactly that."""
    console.clock.advance(timedelta(days=60))
    run_due(console.runtime)  # what earlier tests left due is decided today, not tomorrow
    console.clock.advance(timedelta(days=1))
    day = console.clock.now().astimezone(ZoneInfo("Asia/Tokyo")).date().isoformat()
    before = set(outbox_files(console.runtime.settings))
    console.signup("funnel-1")
    console.signup("funnel-2", locale="en")
    console.signup("funnel-3", annual_contract_value=3_600_000, csm_name="佐藤 花子")
    run_due(console.runtime)
    mails = {p.name: p for p in outbox_files(console.runtime.settings) if p not in before}
    assert len(mails) == 3
    by_customer = {
        external_id: next(p for p in mails.values() if f"{external_id}@" in p.read_text("utf-8"))
        for external_id in ("funnel-1", "funnel-2", "funnel-3")
    }
    console.clock.advance(timedelta(minutes=10))
    reader = _tracked_links(console, by_customer["funnel-1"])[0]
    followed = httpx.get(reader, headers={"User-Agent": BROWSER_AGENT}, follow_redirects=False)
    assert followed.status_code == 302 and followed.headers["location"].startswith("https://")
    for link in _tracked_links(console, by_customer["funnel-2"]):  # a gateway checks them all
        httpx.get(link, headers={"User-Agent": "Barracuda Sentinel"}, follow_redirects=False)
    console.track("funnel-3", "subscription_upgraded")
    rules = console.runtime.analytics_rules()
    refresh_rollups(console.runtime.engine, rules=rules)  # the scheduler's jobs, now
    refresh_band_snapshot(console.runtime.engine, rules=rules, now=console.clock.now())

    page = console.page("viewer", "en")
    page.goto(f"{console.base_url}/console/journeys/onboarding?from={day}&to={day}")
    assert page.inner_text("#funnel-enrolled") == "3"
    assert page.inner_text("#funnel-converted") == "1"
    cells = page.locator("#funnel-welcome td").all_inner_texts()
    # due, sent, skipped, missed, failed, delivered, opened, clicked, unsub., bounced, converted
    assert [c.split()[0] for c in cells] == ["3", "3", "0", "0", "0", "0", "0", "1", "0", "0", "1"]
    assert page.locator("#chart-funnel svg").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "journey-funnel-en.png"), full_page=True)

    page.select_option("#funnel-tier", "high")
    with page.expect_navigation():
        page.click("#funnel-show")
    assert "by_tier=high" in page.url and page.inner_text("#funnel-enrolled") == "1"
    with page.expect_download() as download:
        page.click("#funnel-csv")
    exported = Path(download.value.path()).read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(exported)))
    welcome = next(r for r in rows if r["step"] == "welcome" and r["tier"] == "all")
    assert (welcome["sent"], welcome["converted"], welcome["clicked"]) == ("1", "1", "0")

    page.goto(f"{console.base_url}/console/")
    assert page.locator("#chart-activity svg").count() == 1
    assert page.locator("#chart-backlog svg").count() == 1
    assert page.locator("#chart-bands svg").count() == 1
    assert page.inner_text("#bands-as-of").startswith("Counted ")  # the snapshot, and when
    sent_today = page.locator(f"#chart-activity circle title:text-is('Sent · {day[5:]}: 3')")
    assert sent_today.count() == 1  # the exact value of today's point
    page.screenshot(path=str(SCREENSHOTS / "overview-en.png"), full_page=True)
    page.context.close()

    ja = console.page("viewer", "ja")
    ja.goto(f"{console.base_url}/console/journeys/onboarding?from={day}&to={day}")
    assert ja.inner_text("#funnel-title") == "ファネル"
    ja.screenshot(path=str(SCREENSHOTS / "journey-funnel-ja.png"), full_page=True)
    ja.context.close()


def _onboarding_enrollment(console: Console, external_id: str) -> int:
    with console.runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(enrollments.c.id).where(
                    enrollments.c.customer_id == _customer_id(console.runtime, external_id),
                    enrollments.c.journey_id == "onboarding",
                )
            ).scalar_one()
        )


def _enrollment_state(console: Console, enrollment_id: int) -> str:
    with console.runtime.engine.connect() as connection:
        return str(
            connection.execute(
                select(enrollments.c.state).where(enrollments.c.id == enrollment_id)
            ).scalar_one()
        )
