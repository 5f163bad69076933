"""The console's journey pages for the journeys Stepmail ships (``journeys/``), not only the
frozen test set: every journey, every step, in both languages, answers a page. A journey
entered on a list of events (``community_invite``) once answered 500 on the list and its own
page, which the test set, with no such journey, never showed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from tests.support.console import console_client, sign_in
from tests.support.environment import ROOT, make_settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, journeys_dir=ROOT / "journeys")


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient]:
    yield from console_client(runtime)


def test_every_shipped_journey_and_step_has_a_page(console: TestClient, runtime: Runtime) -> None:
    sign_in(console, "viewer")
    journeys = runtime.journeys
    assert any(isinstance(j.trigger, tuple) for j in journeys.values())  # what broke the pages
    pages = ["/console/journeys"]
    for journey in journeys.values():
        pages.append(f"/console/journeys/{quote(journey.id)}")
        pages += [
            f"/console/journeys/{quote(journey.id)}/steps/{quote(s.id)}" for s in journey.steps
        ]
    for language in ("en", "ja"):
        for url in pages:
            answer = console.get(url, headers={"Accept-Language": language})
            assert answer.status_code == 200, (url, language, answer.text[-500:])
    listed = console.get("/console/journeys", headers={"Accept-Language": "en"}).text
    assert "<code>stage_changed</code>, <code>nps_submitted</code>" in listed
