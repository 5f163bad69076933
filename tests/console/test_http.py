"""The console over HTTP: who may see and do what, the CSRF defences, the headers every answer
carries, and hostile input answered with a page naming the problem, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.console.security import CSP, MAIL_FRAME_CSP
from orchestrator.db.tables import enrollments, suppressions
from orchestrator.runtime import Runtime
from tests.support.console import SITE, address, console_client, csrf_of, post, sign_in
from tests.support.delivery import run_due
from tests.support.environment import ROOT
from tests.support.signups import post_signup, signup_payload


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient]:
    yield from console_client(runtime)


PAGES = [
    "/console/",
    "/console/customers",
    "/console/customers/cust-1",
    "/console/inbox",
    "/console/journeys",
    "/console/journeys/onboarding",
    "/console/journeys/onboarding/steps/welcome",
    "/console/operations/suppressions",
    "/console/operations/unknown-sends",
    "/console/operations/provider-events",
]


def enrolled(console: TestClient, runtime: Runtime) -> int:
    post_signup(console, signup_payload())
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(enrollments.c.id).where(enrollments.c.journey_id == "onboarding")
            ).scalar_one()
        )


def state_of(runtime: Runtime, enrollment_id: int) -> str:
    with runtime.engine.connect() as connection:
        return str(
            connection.execute(
                select(enrollments.c.state).where(enrollments.c.id == enrollment_id)
            ).scalar_one()
        )


def test_every_page_asks_a_stranger_to_sign_in_and_comes_back_after(
    console: TestClient, runtime: Runtime
) -> None:
    post_signup(console, signup_payload())
    for path in PAGES:
        answer = console.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=%2Fconsole%2F")
    signed = sign_in(console, "viewer")
    assert (signed.status_code, signed.headers["location"]) == (303, "/console/")
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert "Path=/console" in cookie
    for path in PAGES:
        assert console.get(path).status_code == 200, path
    assert console.get("/console").headers["location"] == "/console/"


def test_pages_carry_a_strict_policy_and_assets_come_from_stepmail(
    console: TestClient,
) -> None:
    sign_in(console, "viewer")
    page = console.get("/console/journeys")
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page.text)  # no inline handlers
    frame = console.get("/console/journeys/onboarding/steps/welcome/mail?tier=tech&locale=ja")
    assert frame.status_code == 200 and frame.headers["content-security-policy"] == MAIL_FRAME_CSP
    assert "sandbox" in MAIL_FRAME_CSP and "script-src" not in MAIL_FRAME_CSP
    asset = console.get("/console/static/console.css")
    assert asset.status_code == 200 and "max-age" in asset.headers["cache-control"]
    shipped = [
        *(ROOT / "orchestrator/console/templates").glob("*.html"),
        *(ROOT / "orchestrator/console/static").glob("*"),
    ]
    for path in shipped:  # no CDN, no font or script from elsewhere
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path


def test_the_api_document_leaves_the_console_out(console: TestClient) -> None:
    paths = console.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]


ACTIONS: list[tuple[str, str]] = [
    ("/console/enrollments/{e}/pause", "editor"),
    ("/console/enrollments/{e}/end", "editor"),
    ("/console/sends/1/resend", "csm"),
    ("/console/tasks/1/close", "csm"),
    ("/console/tasks/1/note", "csm"),
    ("/console/operations/suppressions", "admin"),
    ("/console/operations/unknown-sends/1/settle", "admin"),
    ("/console/journeys/onboarding/steps/welcome/test", "editor"),
    ("/console/users/disable", "admin"),
]
BELOW = {"csm": ["viewer"], "editor": ["viewer", "csm"], "admin": ["viewer", "csm", "editor"]}


@pytest.mark.parametrize(("path", "least"), ACTIONS)
def test_each_action_is_refused_to_the_roles_below_it(
    console: TestClient, runtime: Runtime, path: str, least: str
) -> None:
    url = path.format(e=enrolled(console, runtime))
    assert post(console, url, token=False).status_code == 303  # a stranger: to the sign-in
    for role in BELOW[least]:
        sign_in(console, role)
        refused = post(console, url, {"email": "x@customer.example", "note": "n"})
        assert refused.status_code == 403, (role, url)
        assert (
            "You may not do this" in refused.text or "この操作は許可されていません" in refused.text
        )
    assert state_of(runtime, 1) == "active"


def test_a_form_needs_its_sessions_token_and_this_sites_origin(
    console: TestClient, runtime: Runtime
) -> None:
    enrollment = enrolled(console, runtime)
    sign_in(console, "editor")
    url = f"/console/enrollments/{enrollment}/pause"
    assert post(console, url, token=False).status_code == 403
    assert post(console, url, {"csrf_token": "A" * 43}).status_code == 403
    assert post(console, url, origin="https://evil.example").status_code == 403
    assert post(console, url, origin=None).status_code == 403  # neither Origin nor Referer
    assert post(console, url, origin="null").status_code == 403
    assert state_of(runtime, enrollment) == "active"
    other = post(console, url, origin=None, Referer=f"{SITE}/console/customers/cust-1")
    assert other.status_code == 303 and state_of(runtime, enrollment) == "paused"

    console.cookies.clear()
    login = console.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    console.cookies.delete("stepmail_login", path="/console")
    answer = console.post(
        "/console/login",
        headers={"Origin": SITE},
        data={"email": address("admin"), "password": "x", "csrf_token": token.group(1)},
    )
    assert answer.status_code == 403  # the login form's own token, without its cookie


def test_hostile_input_gets_a_page_naming_the_problem(
    console: TestClient, runtime: Runtime
) -> None:
    payload = signup_payload("acct/42 東京", email="tokyo@customer.example")
    assert post_signup(console, payload).status_code == 202
    sign_in(console, "admin")
    assert console.get("/console/customers/acct%2F42%20%E6%9D%B1%E4%BA%AC").status_code == 200
    assert console.get("/console/customers/acct%00x").status_code == 400
    assert console.get("/console/customers?q=%00").status_code == 400
    assert console.get("/console/customers?q=" + "x" * 201).status_code == 422
    assert (
        console.get("/console/customers?field=company&q=a&after=b&after_id=99999999999").status_code
        == 404
    )
    assert console.get("/console/tasks/2147483648").status_code == 404
    assert console.get("/console/tasks/999999").status_code == 404  # TaskNotFound: a page
    assert console.get("/console/tasks/-1").status_code == 404
    assert console.get("/console/audit?before=1e9").status_code == 404
    assert console.get("/console/journeys/nope").status_code == 404
    assert (
        console.get(
            "/console/journeys/onboarding/steps/welcome/mail?tier=vip&locale=ja"
        ).status_code
        == 422
    )
    token = csrf_of(console)
    bad = console.post(
        "/console/operations/suppressions",
        content=b"email=%ff&csrf_token=x",
        headers={"Origin": SITE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 422 and "email: is not UTF-8" in bad.text
    for body, named in (
        (b"email=%ED%A0%80&csrf_token=x", "email"),  # an encoded lone surrogate
        (b"e%FFmail=a&csrf_token=x", "e?mail"),  # in the name
        (b"email=\xff&csrf_token=x", "email"),  # a raw byte, not percent-encoded
    ):
        refused = console.post(
            "/console/operations/suppressions",
            content=body,
            headers={"Origin": SITE, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert refused.status_code == 422 and f"{named}: is not UTF-8" in refused.text, body
    long = post(
        console, "/console/operations/suppressions", {"email": "a" * 400, "csrf_token": token}
    )
    assert long.status_code == 422 and "email: at most 320 characters" in long.text
    wrong = post(console, "/console/operations/suppressions", {"email": "not an address"})
    assert wrong.status_code == 422 and "email: not a valid address" in wrong.text
    missing = post(console, "/console/enrollments/999999/pause")
    assert missing.status_code == 404
    with runtime.engine.connect() as connection:
        assert connection.execute(select(suppressions)).first() is None


def test_after_an_action_or_a_sign_in_only_console_pages_are_reached(
    console: TestClient, runtime: Runtime
) -> None:
    enrollment = enrolled(console, runtime)
    for target in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/console/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ]:
        sign_in(console, "editor")
        answer = post(console, f"/console/enrollments/{enrollment}/pause", {"back": target})
        assert answer.headers["location"].startswith("/console/?done="), target
        post(console, f"/console/enrollments/{enrollment}/resume")
        moved = console.get("/console/language", params={"lang": "en", "next": target})
        assert moved.headers["location"] == "/console/"


def test_the_ui_speaks_the_readers_language_and_remembers_a_choice(
    console: TestClient,
) -> None:
    def heading(**headers: str) -> str:
        found = re.search(
            r"<h1[^>]*>(.*?)</h1>", console.get("/console/login", headers=headers).text
        )
        assert found is not None
        return found.group(1)

    assert heading() == "Stepmail コンソールにサインイン"
    assert heading(**{"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"}) == (
        "Sign in to the Stepmail console"
    )
    assert heading(**{"Accept-Language": "fr-FR, ja;q=0.3, en;q=0.2"}).startswith("Stepmail")
    console.get("/console/language", params={"lang": "en", "next": "/console/login"})
    assert heading() == "Sign in to the Stepmail console"
    console.get("/console/language", params={"lang": "xx"})
    assert heading() == "Sign in to the Stepmail console"


def test_a_missing_customer_is_a_page_in_the_readers_language(console: TestClient) -> None:
    sign_in(console, "viewer")
    answer = console.get("/console/customers/nobody", headers={"Accept-Language": "en"})
    assert answer.status_code == 404 and "Not found" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_a_sent_step_shows_its_subject_and_a_failed_one_can_be_sent_again(
    console: TestClient, runtime: Runtime
) -> None:
    from orchestrator.db.tables import scheduled_sends

    post_signup(console, signup_payload())
    run_due(runtime)
    with runtime.engine.begin() as connection:
        connection.execute(
            scheduled_sends.update()
            .where(scheduled_sends.c.step_id == "basics")
            .values(state="failed", reason="550 no such user")
        )
    sign_in(console, "csm")
    page = console.get("/console/customers/cust-1")
    assert "【Relay】" in page.text and "550 no such user" in page.text
    send = re.search(r'action="/console/sends/(\d+)/resend"', page.text)
    assert send is not None
    answer = post(
        console, f"/console/sends/{send.group(1)}/resend", {"back": "/console/customers/cust-1"}
    )
    assert answer.headers["location"] == "/console/customers/cust-1?done=resent"


def test_an_admin_disables_a_user_whose_session_ends_at_once(console: TestClient) -> None:
    sign_in(console, "csm")
    csm_cookies = dict(console.cookies.items())

    def as_the_csm() -> int:
        console.cookies.clear()
        for name, value in csm_cookies.items():
            console.cookies.set(name, value, domain="stepmail.example.com", path="/console")
        return int(console.get("/console/").status_code)

    assert as_the_csm() == 200
    sign_in(console, "editor")
    assert console.get("/console/users").status_code == 403
    sign_in(console, "admin")
    assert address("csm") in console.get("/console/users").text
    mine = post(console, "/console/users/disable", {"email": address("admin")})
    assert mine.status_code == 422 and "your own account" in mine.text
    done = post(
        console, "/console/users/disable", {"email": address("csm"), "back": "/console/users"}
    )
    assert done.headers["location"] == "/console/users?done=user_disabled"
    assert as_the_csm() == 303  # the same cookie: back to the sign-in page
