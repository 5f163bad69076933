"""Programs for low touch: low-touch mails list the next sessions in the customer's language
and local time, each behind a link signed for them; opening it records nothing, the button
registers within the session's capacity (a program_registered event) and leads on to the
session's registration page; attendance comes back as an event."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.db.tables import program_registrations, program_seats, usage_events
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import make_settings
from tests.support.journeys import standard_with
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events

PROGRAMS = """\
programs:
  - id: small-session
    kind: group_session
    title: {ja: "少人数の説明会", en: "A small group session"}
    starts_at: 2026-11-05T06:00:00+00:00
    timezone: Asia/Tokyo
    capacity: 1
    registration_url: https://relay.example/sessions/small
  - id: long-gone
    kind: webinar
    title: {ja: "終わった回", en: "A past webinar"}
    starts_at: 2020-01-01T06:00:00+00:00
    timezone: Asia/Tokyo
    capacity: 10
    registration_url: https://relay.example/sessions/gone
  - id: high-only
    kind: webinar
    title: {ja: "ハイタッチ向け", en: "For high touch"}
    starts_at: 2026-11-06T06:00:00+00:00
    timezone: Asia/Tokyo
    capacity: 10
    registration_url: https://relay.example/sessions/high
    tiers: [high]
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(tmp_path / "journeys", {"programs.yaml": PROGRAMS})
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def session_links(runtime: Runtime, external_id: str) -> tuple[str, list[str]]:
    """The welcome mail's html and its session links."""
    for path in outbox_files(runtime.settings):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if f"{external_id}@" in str(message["To"]):
            html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
            links = re.findall(r'href="https://stepmail\.example\.com(/programs/[^"]+)"', html)
            return html, links
    raise AssertionError(f"no mail to {external_id}")


def registrations(runtime: Runtime) -> list[tuple[str, int]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            select(program_registrations.c.program_id, program_registrations.c.customer_id)
        ).all()
        return [(r.program_id, r.customer_id) for r in rows]


def events_named(runtime: Runtime, name: str) -> int:
    with runtime.engine.connect() as connection:
        return len(
            connection.execute(select(usage_events.c.id).where(usage_events.c.name == name)).all()
        )


def test_low_touch_mails_list_the_next_sessions_and_a_click_registers_within_capacity(
    client: TestClient, runtime: Runtime
) -> None:
    post_signup(client, signup_payload("amy", tier="low"))
    post_signup(client, signup_payload("bob", tier="low", locale="en", timezone="America/New_York"))
    post_signup(client, signup_payload("cat", tier="tech"))
    run_due(runtime)

    html, links = session_links(runtime, "amy")
    assert "少人数の説明会" in html and "2026年11月5日(木) 15:00" in html  # Tokyo time
    assert "終わった回" not in html and "ハイタッチ向け" not in html
    assert len(links) == 1
    bob_html, bob_links = session_links(runtime, "bob")
    assert "A small group session" in bob_html and "Thu 5 Nov 2026, 1:00 AM" in bob_html
    assert bob_links[0] != links[0]  # signed per customer
    assert session_links(runtime, "cat")[1] == []  # tech touch: no sessions

    page = client.get(links[0])  # what a mail scanner does
    assert page.status_code == 200 and "少人数の説明会" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert registrations(runtime) == []

    first = client.post(links[0], follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "https://relay.example/sessions/small"
    again = client.post(links[0], follow_redirects=False)
    assert again.status_code == 303  # registered already: on to the page, nothing new
    assert len(registrations(runtime)) == 1 and events_named(runtime, "program_registered") == 1

    full = client.post(bob_links[0], follow_redirects=False)
    assert full.status_code == 200 and "this session is full" in full.text
    assert len(registrations(runtime)) == 1
    with runtime.engine.connect() as connection:
        assert connection.execute(select(program_seats.c.taken)).scalar() == 1

    tampered = links[0][:-3] + ("AAA" if not links[0].endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 400
    assert client.post(tampered).status_code == 400

    attended = event("amy", "program_attended", properties={"program": "small-session"})
    assert post_events(client, attended).status_code == 202
    assert events_named(runtime, "program_attended") == 1
