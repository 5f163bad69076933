"""One-click unsubscribe (RFC 8058), topics and resubscribe, over HTTP; the headers every mail
carries. The same page in a real browser: tests/test_unsubscribe_browser.py."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api.app import create_app
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import scheduled_sends, subscription_preferences, suppressions
from orchestrator.recipients.suppression import suppress
from orchestrator.recipients.unsubscribe_links import list_unsubscribe_header
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.transports.outbox import OutboxTransport
from tests.support.delivery import run_due
from tests.support.environment import make_settings
from tests.support.journeys import TOPICS, write_journeys
from tests.support.signups import outbox_files, post_signup, signup_payload

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, clock: FrozenClock) -> Iterator[Runtime]:
    journeys = write_journeys(tmp_path / "journeys", TOPICS)
    settings = make_settings(
        tmp_path,
        database_url,
        journeys_dir=journeys,
        unsubscribe_mailto="mailto:unsubscribe@acme.example",
    )
    runtime = build_runtime(settings, clock=clock, transport=OutboxTransport(settings.outbox_dir))
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def first_mail(runtime: Runtime) -> Message:
    return email.message_from_bytes(outbox_files(runtime.settings)[0].read_bytes())


def link_of(runtime: Runtime, client: TestClient, **fields: Any) -> str:
    """Sign up, send the day-0 mails, and return the path of the unsubscribe link in one."""
    response = post_signup(client, signup_payload(**fields))
    assert response.status_code == 202, response.text
    assert run_due(runtime) == ["sent", "sent"]
    header = first_mail(runtime)["List-Unsubscribe"]
    url = re.match(r"<(https://[^>]+)>", header)
    assert url is not None, header
    return url[1].removeprefix(runtime.settings.public_base_url)


def states(runtime: Runtime) -> dict[tuple[str, str], tuple[str, str | None]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(
                scheduled_sends.c.journey_id,
                scheduled_sends.c.step_id,
                scheduled_sends.c.state,
                scheduled_sends.c.reason,
            )
        )
        return {(j, s): (state, reason) for j, s, state, reason in rows}


def suppression_of(runtime: Runtime) -> tuple[str, str] | None:
    with runtime.engine.connect() as connection:
        row = connection.execute(select(suppressions.c.reason, suppressions.c.source)).first()
        return None if row is None else (row.reason, row.source)


def test_every_mail_carries_one_click_headers_with_the_mailto_and_a_visible_link(
    runtime: Runtime, client: TestClient
) -> None:
    path = link_of(runtime, client)
    mail = first_mail(runtime)
    url = runtime.settings.public_base_url + path
    assert mail["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@acme.example?subject=unsubscribe&body="
        f"{url.replace(':', '%3A').replace('/', '%2F')}>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    assert url in html.get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_the_header_without_a_mailto_is_the_url_alone() -> None:
    assert list_unsubscribe_header("https://x.example/u/t") == "<https://x.example/u/t>"


def test_a_one_click_post_without_cookies_stops_every_later_mail(
    runtime: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    path = link_of(runtime, client)
    client.cookies.clear()
    response = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)

    assert response.status_code == 200
    assert suppression_of(runtime) == ("unsubscribe", "one-click")
    clock.advance(__import__("datetime").timedelta(days=1))
    assert run_due(runtime) == ["skipped", "skipped"]
    assert states(runtime)[("news", "more")] == ("skipped", "address suppressed (unsubscribe)")


def test_a_one_click_post_as_multipart_or_with_no_body_works_too(
    runtime: Runtime, client: TestClient
) -> None:
    path = link_of(runtime, client)
    response = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert client.post(path).status_code == 200  # and a second time is harmless
    assert suppression_of(runtime) == ("unsubscribe", "one-click")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "tamper",
    [
        # The signature (not its last character: base64's spare bits there decode the same).
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
        lambda t: "x" + t,  # the public id
        lambda t: t.split(".")[0],  # no signature at all
        lambda t: t.split(".")[0] + ".",  # an empty one
    ],
)
def test_a_tampered_token_is_a_400_with_a_small_page_and_changes_nothing(
    runtime: Runtime, client: TestClient, method: str, tamper: Any
) -> None:
    path = link_of(runtime, client)
    token = path.removeprefix("/unsubscribe/")
    headers = {**ONE_CLICK, "Accept-Language": "en-US,en;q=0.9,ja;q=0.5"}
    response = client.request(method, f"/unsubscribe/{tamper(token)}", headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "This link is not valid" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert suppression_of(runtime) is None


@pytest.mark.parametrize("path", ["topics", "resubscribe"])
def test_the_other_forms_refuse_a_tampered_token_too(
    runtime: Runtime, client: TestClient, path: str
) -> None:
    token = link_of(runtime, client).removeprefix("/unsubscribe/")
    response = client.post(f"/unsubscribe/x{token}/{path}", content=b"topic=tips")
    assert response.status_code == 400 and "このリンクは無効です" in response.text
    with runtime.engine.connect() as connection:
        assert connection.execute(select(subscription_preferences)).first() is None


def test_the_page_speaks_the_customers_language_and_is_autoescaped(
    runtime: Runtime, client: TestClient
) -> None:
    path = link_of(runtime, client, locale="ja")
    page = client.get(path)
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text and "メール配信の設定" in page.text
    assert "Product tips &lt;b&gt;&amp;&lt;/b&gt; tricks" in page.text
    assert "<b>&</b>" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text


def test_an_english_customer_gets_the_english_page(runtime: Runtime, client: TestClient) -> None:
    path = link_of(runtime, client, locale="en", external_id="en-1")
    page = client.get(path)
    assert '<html lang="en">' in page.text and "Email preferences" in page.text


def test_turning_a_topic_off_skips_that_journey_only(
    runtime: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    from datetime import timedelta

    path = link_of(runtime, client)
    response = client.post(
        f"{path}/topics",
        content=b"topic=tips",
        headers=ONE_CLICK,
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"{path}?done=saved"
    page = client.get(response.headers["location"])
    assert 'value="news">' in page.text and 'value="tips" checked>' in page.text
    with runtime.engine.connect() as connection:
        prefs = connection.execute(
            select(subscription_preferences.c.topic, subscription_preferences.c.subscribed)
        ).all()
    assert sorted(prefs) == [("news", False), ("tips", True)]

    clock.advance(timedelta(days=1))
    assert sorted(run_due(runtime)) == ["sent", "skipped"]
    assert states(runtime)[("news", "more")] == (
        "skipped",
        "customer opted out of 'Monthly news' (news)",
    )
    assert states(runtime)[("tips", "more")][0] == "sent"


def test_unknown_topics_in_the_form_are_ignored(runtime: Runtime, client: TestClient) -> None:
    path = link_of(runtime, client)
    client.post(f"{path}/topics", content=b"topic=tips&topic=nope&x=1", headers=ONE_CLICK)
    with runtime.engine.connect() as connection:
        topics = connection.execute(select(subscription_preferences.c.topic)).scalars().all()
    assert sorted(topics) == ["news", "tips"]


def test_resubscribe_undoes_ones_own_unsubscribe(runtime: Runtime, client: TestClient) -> None:
    path = link_of(runtime, client, locale="en")
    assert "You are unsubscribed" in client.post(path).text
    page = client.post(f"{path}/resubscribe")  # follows the 303 back to the page
    assert page.status_code == 200 and "You are subscribed again." in page.text
    assert "Email preferences" in page.text
    assert suppression_of(runtime) is None


def test_resubscribe_cannot_lift_a_bounce_or_a_spam_report(
    runtime: Runtime, client: TestClient
) -> None:
    path = link_of(runtime, client, locale="en")
    with Session(runtime.engine) as session, session.begin():
        suppress(session, "cust-1@customer.example", "bounce", "sendgrid", runtime.clock.now())
    page = client.get(path)
    assert "Mail to this address is stopped" in page.text and "resubscribe" not in page.text
    client.post(f"{path}/resubscribe")
    assert suppression_of(runtime) == ("bounce", "sendgrid")


def test_an_oversized_topics_form_is_refused(runtime: Runtime, client: TestClient) -> None:
    path = link_of(runtime, client)
    body = b"topic=" + b"x" * (70 * 1024)
    assert client.post(f"{path}/topics", content=body, headers=ONE_CLICK).status_code == 413


def test_topic_labels_are_localised_and_internal_journeys_are_not_offered(
    tmp_path: Path, database_url: str, clock: FrozenClock
) -> None:
    journeys = write_journeys(
        tmp_path / "journeys",
        {
            "tips": TOPICS["tips"] + 'topic: {ja: "活用のヒント", en: "Product tips"}\n',
            "news": TOPICS["news"] + "topic: false\n",
        },
    )
    settings = make_settings(tmp_path, database_url, journeys_dir=journeys)
    runtime = build_runtime(settings, clock=clock)
    with TestClient(create_app(runtime)) as client:
        page = client.get(link_of(runtime, client)).text
    runtime.close()

    assert "活用のヒント" in page
    assert 'value="tips"' in page
    assert 'value="news"' not in page and "Monthly news" not in page


# -- probe L13 --------------------------------------------------------------------------------


def _other_spellings(token: str) -> list[str]:
    """The same signature in other base64 spellings: padding added, and the unused low bits of
    the last character changed (``…LoEE`` and ``…LoEF`` decode to the same bytes)."""
    import base64

    value, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    spellings = [f"{token}=", f"{token}=="]
    last = alphabet.index(signature[-1])
    for other in alphabet:
        twin = f"{value}.{signature[:-1]}{other}"
        decoded = base64.urlsafe_b64decode(twin.rpartition(".")[2] + "=" * (-len(signature) % 4))
        if other != signature[-1] and decoded == raw and alphabet.index(other) != last:
            spellings.append(twin)
    return spellings


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_only_the_issued_spelling_of_a_token_is_accepted(
    runtime: Runtime, client: TestClient, method: str
) -> None:
    """README: a changed token gets 400 -- also one that decodes to the same signature."""
    token = link_of(runtime, client).removeprefix("/unsubscribe/")
    spellings = _other_spellings(token)
    assert len(spellings) >= 3
    for spelling in spellings:
        response = client.request(method, f"/unsubscribe/{spelling}", headers=ONE_CLICK)
        assert response.status_code == 400, spelling
    assert suppression_of(runtime) is None
    assert client.get(f"/unsubscribe/{token}").status_code == 200


def test_every_answer_under_unsubscribe_is_private(runtime: Runtime, client: TestClient) -> None:
    """Pages, and the JSON answers that are not pages (413, 422, 405), are never cached or
    sniffed."""
    token = link_of(runtime, client).removeprefix("/unsubscribe/")
    answers = [
        client.get(f"/unsubscribe/{token}"),
        client.post(f"/unsubscribe/{token}/topics", content=b"x" * (70 * 1024)),  # 413
        client.post(
            f"/unsubscribe/{token}/topics",
            content=b"topic=x",
            headers={"Content-Type": "text/plain; charset=nope"},
        ),
        client.put(f"/unsubscribe/{token}"),  # 405
    ]
    for response in answers:
        assert response.headers["cache-control"] == "no-store", response.status_code
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert answers[1].status_code == 413


def test_a_trailing_slash_is_not_redirected_to_the_host_header(
    runtime: Runtime, client: TestClient
) -> None:
    """``POST /unsubscribe/TOKEN/`` with ``Host: evil.example`` answered 307 to
    ``http://evil.example/…``."""
    token = link_of(runtime, client).removeprefix("/unsubscribe/")
    response = client.post(
        f"/unsubscribe/{token}/",
        headers={**ONE_CLICK, "Host": "evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert suppression_of(runtime) is None
