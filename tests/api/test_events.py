"""``POST /v1/events`` and ``stepmail track``: stored once, all or nothing, authenticated."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.clock import FrozenClock
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH, event, event_count, post_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


@pytest.fixture
def customer(client: TestClient) -> str:
    assert post_signup(client, signup_payload("acme")).status_code == 202
    return "acme"


def test_a_single_event_is_stored(client: TestClient, runtime, customer: str) -> None:
    response = post_events(client, event(customer, "login", id="evt-1"))
    assert response.status_code == 202
    assert response.json() == {
        "stored": 1,
        "duplicates": 0,
        "task_ids": [],
        "uncatalogued": 0,
        "uncatalogued_names": [],
    }
    assert event_count(runtime) == 1


def test_duplicate_event_ids_are_stored_once(client: TestClient, runtime, customer: str) -> None:
    first = post_events(client, event(customer, "report_created", id="r-1"))
    again = post_events(
        client, event(customer, "report_created", id="r-1"), event(customer, "login", id="l-1")
    )
    assert first.json()["stored"] == 1
    assert again.json() == {
        "stored": 1,
        "duplicates": 1,
        "task_ids": [],
        "uncatalogued": 0,
        "uncatalogued_names": [],
    }
    assert event_count(runtime) == 2


def test_events_outside_the_catalogue_are_stored_flagged_and_logged(
    client: TestClient, runtime, customer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The product may send events no journey uses yet: never refused, but a typo such as
    ``report_creatd`` is visible in the answer and the log."""
    with caplog.at_level(logging.WARNING, logger="orchestrator.services.events"):
        response = post_events(
            client,
            event(customer, "report_creatd", id="t-1"),
            event(customer, "report_creatd", id="t-2"),
            event(customer, "login", id="t-3"),
            event(customer, "beta_feature_used", id="t-4"),
        )
    assert response.status_code == 202
    answer = response.json()
    assert (answer["stored"], answer["uncatalogued"]) == (4, 3)
    assert answer["uncatalogued_names"] == ["beta_feature_used", "report_creatd"]
    assert event_count(runtime) == 4
    assert [r.getMessage() for r in caplog.records] == [
        "3 event(s) named outside the event catalogue, stored all the same: "
        "beta_feature_used, report_creatd"
    ]


def test_events_without_an_id_are_keyed_by_their_content(
    client: TestClient, runtime, customer: str, clock: FrozenClock
) -> None:
    at = clock.now() - timedelta(hours=1)
    same = event(customer, "login", at, properties={"device": "ios"})
    assert post_events(client, same).json()["stored"] == 1
    assert post_events(client, same).json()["duplicates"] == 1
    assert event_count(runtime) == 1


def test_a_bad_batch_is_refused_whole_naming_the_item_and_field(
    client: TestClient, runtime, customer: str
) -> None:
    batch = [event(customer, "login"), {"external_id": customer}, event(customer, "login")]
    response = post_events(client, *batch)
    assert response.status_code == 422
    locs = [err["loc"] for err in response.json()["detail"]]
    assert ["body", "events", 1, "name"] in locs
    assert event_count(runtime) == 0


def test_an_unknown_customer_refuses_the_batch_and_names_it(
    client: TestClient, runtime, customer: str
) -> None:
    response = post_events(client, event(customer, "login"), event("nobody", "login"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 1, "external_id"]
    assert "nobody" in response.json()["detail"][0]["msg"]
    assert event_count(runtime) == 0
    single = post_events(client, event("nobody", "login"))
    assert single.status_code == 404 and "nobody" in single.json()["detail"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "Login!"}, "name"),
        ({"occurred_at": "2026-11-02T10:00:00"}, "occurred_at"),
        ({"name": "tier_changed"}, "name"),  # emitted by Stepmail itself
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_fields_are_named(
    client: TestClient, customer: str, item: dict[str, str], field: str
) -> None:
    response = post_events(client, {**event(customer, "login"), **item})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_a_batch_is_limited_to_1000(client: TestClient, runtime, customer: str) -> None:
    response = post_events(client, *[event(customer, "login") for _ in range(1001)])
    assert response.status_code == 422
    assert event_count(runtime) == 0


def test_events_need_the_api_key(client: TestClient, customer: str) -> None:
    body = event(customer, "login")
    assert client.post("/v1/events", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/v1/events", json=body, headers=wrong).status_code == 401
    assert client.post("/v1/events", json=body, headers=AUTH).status_code == 202


def test_the_python_client_tracks_events(client: TestClient, runtime, customer: str) -> None:
    from stepmail_client import StepmailClient

    with StepmailClient("http://testserver", API_KEY, http=client) as stepmail:
        assert stepmail.track(customer, "login", id="c-1", score=3)["stored"] == 1
        assert stepmail.track(customer, "login", id="c-1")["duplicates"] == 1
        updated = stepmail.update_customer(customer, plan="enterprise")
    assert updated["plan"] == "enterprise"
    assert event_count(runtime) == 1
