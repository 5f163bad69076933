"""Storing a batch's scores: a score that moved adds a history row (with its components) and
becomes the customer's; one that did not adds none and only says when it was computed. Both
kinds in one batch, on SQLite and PostgreSQL. An unmoved score's stamp is renewed at most once
a minute."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.clock import FrozenClock
from orchestrator.db.tables import customers, health_score_history
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.environment import make_settings
from tests.support.signups import post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def history(runtime: Runtime, external_id: str) -> list[tuple[int, str, dict[str, object]]]:
    h, c = health_score_history.c, customers.c
    query = (
        select(h.score, h.band, h.components)
        .join(customers, c.id == h.customer_id)
        .where(c.external_id == external_id)
        .order_by(h.id)
    )
    with runtime.engine.connect() as connection:
        return [(score, band, components) for score, band, components in connection.execute(query)]


def latest(runtime: Runtime, external_id: str) -> tuple[object, ...]:
    c = customers.c
    query = select(c.health_score, c.health_band, c.health_updated_at).where(
        c.external_id == external_id
    )
    with runtime.engine.connect() as connection:
        return tuple(connection.execute(query).one())


def score_twice(client: TestClient, clock: FrozenClock, later: timedelta) -> None:
    """Two customers scored, then ``later`` scored again: "same" sends report_created again
    (seen already: its score stays), "moves" adopts a feature (its score moves)."""
    for who in ("same", "moves"):
        assert post_signup(client, signup_payload(who)).status_code == 202
    post_events(client, event("same", "report_created", id="r1"), event("moves", "login", id="l1"))
    clock.advance(later)
    post_events(
        client, event("same", "report_created", id="r2"), event("moves", "report_created", id="r3")
    )


def test_moved_and_unmoved_scores_of_one_batch(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    first = clock.now()
    score_twice(client, clock, timedelta(minutes=1))
    second = clock.now()
    same, moves = history(runtime, "same"), history(runtime, "moves")
    assert len(same) == 1 and len(moves) == 2
    assert moves[1][0] > moves[0][0]
    assert moves[1][2]["adoption"]["raw"] == ["report_created"]  # type: ignore[index]
    assert same[0][2]["adoption"]["raw"] == ["report_created"]  # type: ignore[index]
    assert latest(runtime, "same") == (same[0][0], same[0][1], second)
    assert latest(runtime, "moves") == (moves[1][0], moves[1][1], second)
    assert first < second


def test_an_unmoved_score_is_stamped_again_only_once_its_stamp_is_a_minute_old(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    first = clock.now()
    score_twice(client, clock, timedelta(seconds=59))
    second = clock.now()
    assert latest(runtime, "same")[2] == first  # computed again, to the same score
    assert latest(runtime, "moves")[2] == second  # a score that moved is always stamped
    clock.advance(timedelta(seconds=1))
    third = clock.now()
    post_events(client, event("same", "report_created", id="r4"))
    assert latest(runtime, "same")[2] == third
    assert len(history(runtime, "same")) == 1
