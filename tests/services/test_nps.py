"""Answers that flow back: the day-30 mail's 0-10 scale carries signed per-customer links; the
GET page only shows the choice, the POST records it (idempotent per survey, the latest wins);
the score moves the health score at once, a detractor opens a task for every tier (the CSM's
in high touch, the team queue's otherwise) and enters the recovery journey, a promoter enters
the review request."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import csm_tasks, customers, enrollments, survey_responses, usage_events
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import ROOT, make_settings
from tests.support.journeys import journey_text, standard_with
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY

FEEDBACK = """\
name: Feedback
steps:
  - id: day_30
    after: 0d
    template: onboarding/feedback
    survey: nps
"""
SHIPPED = ROOT / "journeys"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = standard_with(
        tmp_path / "journeys",
        {
            "feedback.yaml": journey_text("feedback", FEEDBACK),
            "nps_recovery.yaml": (SHIPPED / "nps_recovery.yaml").read_text("utf-8"),
            "nps_promoter.yaml": (SHIPPED / "nps_promoter.yaml").read_text("utf-8"),
            "health.yaml": (SHIPPED / "health.yaml").read_text("utf-8"),
        },
    )
    return make_settings(tmp_path, database_url, api_key=API_KEY, journeys_dir=folder)


def nps_links(settings: Settings, external_id: str) -> list[str]:
    """The scale's links in the feedback mail sent to ``external_id``, 0 to 10."""
    for path in outbox_files(settings):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if f"{external_id}@" not in str(message["To"]):
            continue
        if "feedback" not in str(message.get("X-Stepmail-Journey", "feedback")):
            continue
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        links = re.findall(r'href="(https://stepmail\.example\.com/nps/[^"]+)"', html)
        if links:
            return [link.replace("&amp;", "&") for link in links]
    raise AssertionError(f"no NPS mail to {external_id}")


def path_of(link: str) -> str:
    return link.removeprefix("https://stepmail.example.com")


def answered(runtime: Runtime, external_id: str) -> list[tuple[int, str | None, int]]:
    query = (
        select(survey_responses.c.score, survey_responses.c.comment, survey_responses.c.revision)
        .join(customers, customers.c.id == survey_responses.c.customer_id)
        .where(customers.c.external_id == external_id)
    )
    with runtime.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def nps_events(runtime: Runtime, external_id: str) -> list[dict[str, object]]:
    query = (
        select(usage_events.c.properties)
        .join(customers, customers.c.id == usage_events.c.customer_id)
        .where(customers.c.external_id == external_id, usage_events.c.name == "nps_submitted")
        .order_by(usage_events.c.id)
    )
    with runtime.engine.connect() as connection:
        return list(connection.execute(query).scalars())


def tasks_of(runtime: Runtime, external_id: str) -> list[tuple[str, str | None]]:
    query = (
        select(csm_tasks.c.kind, csm_tasks.c.assignee)
        .join(customers, customers.c.id == csm_tasks.c.customer_id)
        .where(customers.c.external_id == external_id)
        .order_by(csm_tasks.c.id)
    )
    with runtime.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def journeys_of(runtime: Runtime, external_id: str) -> set[str]:
    query = (
        select(enrollments.c.journey_id)
        .join(customers, customers.c.id == enrollments.c.customer_id)
        .where(customers.c.external_id == external_id)
    )
    with runtime.engine.connect() as connection:
        return set(connection.execute(query).scalars())


def health_of(runtime: Runtime, external_id: str) -> int | None:
    with runtime.engine.connect() as connection:
        score: int | None = connection.execute(
            select(customers.c.health_score).where(customers.c.external_id == external_id)
        ).scalar()
        return score


def mail_with_scale(
    client: TestClient, runtime: Runtime, external_id: str, **extra: object
) -> list[str]:
    post_signup(client, signup_payload(external_id, **extra))
    run_due(runtime)
    return nps_links(runtime.settings, external_id)


def test_the_day_30_mail_carries_eleven_signed_links_and_a_get_records_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    links = mail_with_scale(client, runtime, "amy", locale="en")
    assert [link.rsplit("=", 1)[1] for link in links] == [str(n) for n in range(11)]
    assert len({link.rsplit("?", 1)[0] for link in links}) == 1  # one token per customer/survey
    other = mail_with_scale(client, runtime, "bob", locale="en")
    assert other[0].rsplit("?", 1)[0] != links[0].rsplit("?", 1)[0]

    page = client.get(path_of(links[8]))  # what a mail scanner does to every link
    assert page.status_code == 200
    assert 'id="score-8" value="8" required checked' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for link in links:
        assert client.get(path_of(link)).status_code == 200
    assert answered(runtime, "amy") == [] and nps_events(runtime, "amy") == []


def test_a_posted_answer_is_recorded_once_and_the_latest_wins(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    links = mail_with_scale(client, runtime, "amy", locale="en", tier="tech")
    page = path_of(links[0]).split("?")[0]
    before = health_of(runtime, "amy")

    first = client.post(page, data={"score": "8"})
    assert first.status_code == 200 and 'id="notice"' in first.text
    assert client.post(page, data={"score": "8"}).status_code == 200  # a double click
    assert answered(runtime, "amy") == [(8, None, 1)]
    assert [e["score"] for e in nps_events(runtime, "amy")] == [8]
    assert health_of(runtime, "amy") != before  # scored at once, not at the next daily job

    client.post(page, data={"score": "9", "comment": "Great\r\nsupport"})
    assert answered(runtime, "amy") == [(9, "Great\nsupport", 2)]
    assert [e["category"] for e in nps_events(runtime, "amy")] == ["passive", "promoter"]
    assert "nps_promoter" in journeys_of(runtime, "amy")
    shown = client.get(page)  # the earlier answer, without ?score
    assert 'value="9" required checked' in shown.text and "Great\nsupport</textarea>" in shown.text
    read = client.get("/v1/customers/amy", headers={"Authorization": f"Bearer {API_KEY}"}).json()
    assert [(a["score"], a["category"], a["comment"]) for a in read["nps"]] == [
        (9, "promoter", "Great\nsupport")
    ]


@pytest.mark.parametrize(("tier", "assignee"), [("high", "csm@acme.example"), ("low", None)])
def test_a_detractor_opens_a_task_for_every_tier_and_starts_the_recovery(
    client: TestClient, runtime: Runtime, tier: str, assignee: str | None
) -> None:
    extra = {"tier": tier, "csm_name": "Kate", "csm_email": "csm@acme.example"}
    links = mail_with_scale(client, runtime, "amy", locale="en", **extra)

    client.post(path_of(links[3]).split("?")[0], data={"score": "3", "comment": "too slow"})

    assert tasks_of(runtime, "amy") == [("nps_detractor", assignee)]
    assert "nps_recovery" in journeys_of(runtime, "amy")
    run_due(runtime)
    subjects = [
        str(email.message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"])
        for p in outbox_files(runtime.settings)
    ]
    assert any("honest answer" in subject for subject in subjects)


def test_a_tampered_or_foreign_link_is_refused_with_a_page_and_records_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    links = mail_with_scale(client, runtime, "amy", locale="ja")
    page = path_of(links[0]).split("?")[0]
    tampered = page[:-3] + ("AAA" if not page.endswith("AAA") else "BBB")
    for answer in (client.get(tampered + "?score=9"), client.post(tampered, data={"score": "9"})):
        assert answer.status_code == 400
        assert "このリンクは無効です" in answer.text
    unsubscribe = client.get("/unsubscribe/" + page.rsplit("/", 1)[1])
    assert unsubscribe.status_code == 400  # a survey token is no unsubscribe token
    for bad in (
        {"score": "11"},
        {"score": "-1"},
        {"score": "٣"},
        {},
        {"score": "5", "comment": "a\x00"},
    ):
        refused = client.post(page, data=bad)
        assert refused.status_code == 422, bad
        assert ("comment" if "comment" in bad else "score") in refused.text
    assert answered(runtime, "amy") == []
