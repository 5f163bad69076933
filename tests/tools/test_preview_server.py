"""The preview server's HTTP side: only its own host name is answered (no DNS rebinding), the
mails are served sandboxed under their own policy, a change is seen once the recheck interval
has passed on the clock (a FrozenClock moved, no sleeping), and bad paths are a 404 page."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from orchestrator.clock import FrozenClock
from orchestrator.tools.preview_server import (
    MAIL_POLICY,
    PAGE_POLICY,
    PreviewState,
    create_preview_app,
)
from tests.support.environment import ROOT, STANDARD_JOURNEYS, START, make_settings


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "templates" / "mail", tmp_path / "templates")
    return tmp_path / "templates"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def state(tmp_path: Path, templates: Path, clock: FrozenClock) -> PreviewState:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'unused.db'}",
        journeys_dir=STANDARD_JOURNEYS,
        templates_dir=templates,
    )
    return PreviewState(settings, clock, recheck_after=1.0)


@pytest.fixture
def client(state: PreviewState) -> TestClient:
    return TestClient(create_preview_app(state), base_url="http://127.0.0.1:8100")


def test_pages_and_mails_carry_their_policies(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200
    assert index.headers["content-security-policy"] == PAGE_POLICY
    assert 'href="/journeys/onboarding/welcome"' in index.text
    step = client.get("/journeys/onboarding/welcome")
    assert step.status_code == 200
    assert step.text.count('<figure class="mail"') == 6  # three tiers × ja, en
    assert '<iframe sandbox=""' in step.text
    mail = client.get("/mail/onboarding/welcome/low/en")
    assert mail.status_code == 200
    assert mail.headers["content-security-policy"] == MAIL_POLICY
    assert "sandbox" in MAIL_POLICY and "script-src" not in MAIL_POLICY
    assert mail.headers["cache-control"] == "no-store"
    assert client.get("/static/live.js").status_code == 200


def test_another_host_name_is_refused(client: TestClient) -> None:
    """A page on evil.example whose name resolves to 127.0.0.1 cannot read the previews."""
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8100"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/journeys/onboarding/nope",
        "/journeys/nope/welcome",
        "/mail/onboarding/welcome/platinum/en",
        "/mail/onboarding/welcome/low/..%2f..%2fetc",
        "/mail/nope/welcome/low/en",
    ],
)
def test_what_is_not_there_is_a_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in response.text


def test_a_change_is_seen_once_the_recheck_interval_has_passed(
    client: TestClient, templates: Path, clock: FrozenClock
) -> None:
    before = client.get("/version").json()["version"]
    path = templates / "onboarding" / "welcome.low.en.html"
    path.write_text(path.read_text("utf-8").replace("Welcome to", "Hello from"), "utf-8")
    assert client.get("/version").json()["version"] == before  # not looked again yet
    clock.advance(timedelta(seconds=1))
    after = client.get("/version").json()["version"]
    assert after != before
    assert "Hello from Relay" in client.get("/journeys/onboarding/welcome").text


def test_a_template_error_is_shown_in_place_of_the_mail(
    client: TestClient, templates: Path
) -> None:
    path = templates / "onboarding" / "welcome.low.en.html"
    text = path.read_text("utf-8").replace(
        "{% block content %}\n", "{% block content %}\n{{ customer.nickname }}\n", 1
    )
    path.write_text(text, "utf-8")
    line = text.splitlines().index("{{ customer.nickname }}") + 1
    page = client.get("/journeys/onboarding/welcome").text
    assert f"{path}:{line}: &#39;dict object&#39; has no attribute &#39;nickname&#39;" in page
    assert client.get("/mail/onboarding/welcome/low/en").status_code == 404
