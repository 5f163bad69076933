"""``GET /r/{token}``: a link in a mail, followed. Only a link Stepmail signed redirects, and
only to where the template's link went; anything else is a small page that links nowhere.
A scanner's request is answered like anyone's (it acts for nobody) but flagged, never counted
as the customer's click."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from orchestrator.db.tables import customers, enrollments, link_clicks, scheduled_sends
from orchestrator.journeys.states import Engagement
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.tracking.links import ClickLinks, click_key, read_click, sign_click
from orchestrator.tracking.scanners import ScannerPolicy, burst_partners, request_reasons
from tests.support.environment import make_settings
from tests.support.usage import API_KEY

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
DESTINATION = "https://docs.example/guide?a=1&b=2"
BASE = "https://stepmail.example.com"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def a_sent_mail(runtime: Runtime, sent_at: datetime) -> int:
    with runtime.engine.begin() as connection:
        customer_id = connection.execute(
            insert(customers)
            .values(
                external_id="c1",
                public_id="p" * 32,
                email="c1@customer.example",
                name="n",
                company="c",
                plan="p",
                tier="low",
                tier_explicit=False,
                annual_contract_value=0,
                currency="JPY",
                locale="ja",
                timezone="Asia/Tokyo",
                attributes={},
                signed_up_at=sent_at,
                created_at=sent_at,
                updated_at=sent_at,
            )
            .returning(customers.c.id)
        ).scalar_one()
        enrollment_id = connection.execute(
            insert(enrollments)
            .values(
                customer_id=customer_id,
                journey_id="onboarding",
                anchor_at=sent_at,
                created_at=sent_at,
            )
            .returning(enrollments.c.id)
        ).scalar_one()
        return int(
            connection.execute(
                insert(scheduled_sends)
                .values(
                    enrollment_id=enrollment_id,
                    customer_id=customer_id,
                    journey_id="onboarding",
                    step_id="welcome",
                    due_at=sent_at,
                    wake_at=sent_at,
                    state="sent",
                    sent_at=sent_at,
                    updated_at=sent_at,
                )
                .returning(scheduled_sends.c.id)
            ).scalar_one()
        )


def token(settings: Settings, send_id: int, url: str = DESTINATION) -> str:
    return sign_click(click_key(settings.signing_secret()), send_id, url)


def clicks(runtime: Runtime) -> list[tuple[str, bool, str]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(
                link_clicks.c.url, link_clicks.c.suspect, link_clicks.c.suspect_reasons
            ).order_by(link_clicks.c.id)
        )
        return [(row.url, row.suspect, row.suspect_reasons) for row in rows]


def engagement(runtime: Runtime, send_id: int) -> int:
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(scheduled_sends.c.engagement).where(scheduled_sends.c.id == send_id)
            ).scalar_one()
        )


def test_a_signed_link_redirects_and_a_persons_click_counts(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    send_id = a_sent_mail(runtime, runtime.clock.now() - timedelta(hours=1))
    answer = client.get(
        f"/r/{token(settings, send_id)}", headers={"User-Agent": BROWSER}, follow_redirects=False
    )
    assert answer.status_code == 302 and answer.headers["location"] == DESTINATION
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert clicks(runtime) == [(DESTINATION, False, "")]
    assert engagement(runtime, send_id) == Engagement.CLICKED


@pytest.mark.parametrize(
    ("method", "agent", "age", "reason"),
    [
        ("HEAD", BROWSER, timedelta(hours=1), "head"),
        ("GET", "Mozilla/5.0 (compatible; Barracuda Sentinel)", timedelta(hours=1), "agent"),
        ("GET", "", timedelta(hours=1), "agent"),
        ("GET", BROWSER, timedelta(seconds=5), "early"),
    ],
)
def test_a_scanners_click_is_answered_but_flagged_and_not_counted(
    client: TestClient,
    runtime: Runtime,
    settings: Settings,
    method: str,
    agent: str,
    age: timedelta,
    reason: str,
) -> None:
    send_id = a_sent_mail(runtime, runtime.clock.now() - age)
    answer = client.request(
        method,
        f"/r/{token(settings, send_id)}",
        headers={"User-Agent": agent},
        follow_redirects=False,
    )
    assert answer.status_code == 302  # following a link acts for nobody: answered alike
    [(url, suspect, reasons)] = clicks(runtime)
    assert url == DESTINATION
    assert suspect and reason in reasons.split(",")
    assert engagement(runtime, send_id) == Engagement.SCANNED  # never CLICKED


def test_two_links_of_one_mail_at_once_are_a_burst_and_both_flagged(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    send_id = a_sent_mail(runtime, runtime.clock.now() - timedelta(hours=1))
    for url in (DESTINATION, "https://docs.example/other"):
        client.get(
            f"/r/{token(settings, send_id, url)}",
            headers={"User-Agent": BROWSER},
            follow_redirects=False,
        )
    assert [(suspect, reasons) for _, suspect, reasons in clicks(runtime)] == [
        (True, "burst"),
        (True, "burst"),
    ]
    assert engagement(runtime, send_id) == Engagement.SCANNED  # the first click taken back


@pytest.mark.parametrize(
    "bad",
    [
        "nothing",
        "a.b",
        "AAAAAQ.AAAA",
        "x" * 9000,
        "%00.%00",
        "\u00e9\u00e9.\u00e9",
    ],
)
def test_an_unsigned_or_changed_link_never_redirects(
    client: TestClient, runtime: Runtime, settings: Settings, bad: str
) -> None:
    answer = client.get(f"/r/{bad}", follow_redirects=False)
    assert answer.status_code in (400, 422) and "location" not in answer.headers
    assert clicks(runtime) == []


def test_a_token_changed_by_one_character_never_redirects(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    good = token(settings, 1)
    payload, tag = good.split(".")
    for changed in (f"{payload[:-1]}A.{tag}", f"{payload}.{tag[:-1]}A", f"{payload}A.{tag}"):
        if changed == good:
            continue
        answer = client.get(f"/r/{changed}", headers={"Accept-Language": "ja"})
        assert answer.status_code == 400 and "location" not in answer.headers
        assert "<a " not in answer.text and 'lang="ja"' in answer.text
    other_key = sign_click(click_key("another secret"), 1, DESTINATION)
    assert client.get(f"/r/{other_key}", follow_redirects=False).status_code == 400


def test_links_are_signed_as_written_and_only_web_links_are_tracked() -> None:
    links = ClickLinks(click_key("s3cret"), BASE, 7)
    tracked = links.track(DESTINATION)
    assert tracked is not None and tracked.startswith(f"{BASE}/r/")
    assert read_click(click_key("s3cret"), tracked.rsplit("/", 1)[1]).url == DESTINATION
    for untracked in ("mailto:a@b.example", "javascript:alert(1)", f"{BASE}/unsubscribe/x", "#"):
        assert links.track(untracked) is None
    text = links.track_text(f"Read {DESTINATION}. Or mail us.")
    assert text.startswith(f"Read {BASE}/r/") and text.endswith(". Or mail us.")


def test_the_scanner_rules_are_pure() -> None:
    policy = ScannerPolicy()
    at = datetime(2026, 11, 2, tzinfo=UTC)
    for age, expected in ((timedelta(hours=1), []), (timedelta(seconds=29), ["early"])):
        reasons = request_reasons(
            policy,
            method="GET",
            user_agent=BROWSER,
            client_ip="192.0.2.1",
            at=at,
            delivered_at=at - age,
        )
        assert reasons == expected
    others = [(1, "https://a.example", at - timedelta(milliseconds=400))]
    assert burst_partners(policy, "https://b.example", at, others) == [1]
    assert burst_partners(policy, "https://a.example", at, others) == []  # a double click
