"""``stepmail check --links`` against a real HTTP server on loopback: answers, 404s, redirects
(followed by hand, each hop's address checked again), servers that answer only GET, a server
that never answers (bounded by the timeout), and loopback or private addresses refused unless
``--allow-private``. Host names are mapped to 127.0.0.1 by the resolver the check takes."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.tools import link_check
from orchestrator.tools.link_check import LinkCheckRules, check_links_online
from tests.support.environment import ROOT, STANDARD_JOURNEYS

HANG = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        path = self.path
        if path == "/hang":
            HANG.wait(5)
            return
        if path == "/get-only" and head:
            self.send_response(405)
        elif path == "/ok" or path == "/get-only":
            self.send_response(200)
        elif path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", f"/loop{len(path)}")
        elif path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/ok")
        elif path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://intranet.stepmail-check.org/secret")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    HANG.clear()
    yield server.server_address[1]
    HANG.set()
    server.shutdown()
    server.server_close()


def loopback(host: str, port: int) -> list[str]:
    """Every name is this machine but ``intranet.stepmail-check.org``, a private address."""
    return ["10.1.2.3"] if host == "intranet.stepmail-check.org" else ["127.0.0.1"]


def test_each_link_gets_its_answer(port: int) -> None:
    base = f"http://docs.stepmail-check.org:{port}"
    urls = [f"{base}/{path}" for path in ("ok", "missing", "moved", "get-only", "loop", "hang")]
    rules = LinkCheckRules(timeout=1.0, concurrency=4, allow_private=True)
    answers = check_links_online(urls, rules, resolver=loopback)
    assert answers == {
        f"{base}/get-only": None,
        f"{base}/hang": "no answer within 1 s",
        f"{base}/loop": "more than 5 redirects",
        f"{base}/missing": "answers HTTP 404",
        f"{base}/moved": None,
        f"{base}/ok": None,
    }


def test_loopback_and_private_addresses_are_not_fetched_unless_allowed(port: int) -> None:
    url = f"http://docs.stepmail-check.org:{port}/ok"
    answers = check_links_online([url], LinkCheckRules(timeout=1.0), resolver=loopback)
    assert answers[url] == (
        "docs.stepmail-check.org resolves to 127.0.0.1, a loopback or private address: "
        "not fetched (--allow-private checks it)"
    )


def test_a_redirect_into_the_private_network_is_checked_again(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first hop is taken as public (this test's server stands in for one); its redirect
    to a name that resolves to 10.1.2.3 is refused, not fetched."""
    monkeypatch.setattr(link_check, "_is_public", lambda address: address == "127.0.0.1")
    hop = f"http://docs.stepmail-check.org:{port}/to-private"
    answers = check_links_online([hop], LinkCheckRules(timeout=1.0), resolver=loopback)
    assert answers[hop] == (
        "intranet.stepmail-check.org resolves to 10.1.2.3, a loopback or private address: "
        "not fetched (--allow-private checks it)"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://relay.example/pricing", "relay.example is a reserved domain (RFC 2606)"),
        ("https://docs.test/", "docs.test is a reserved domain"),
        ("http://[::1]:9/", "resolves to ::1, a loopback or private address"),
        ("http://169.254.169.254/latest/meta-data", "a loopback or private address"),
    ],
)
def test_placeholders_and_metadata_addresses_are_named_not_fetched(url: str, reason: str) -> None:
    answers = check_links_online([url], LinkCheckRules(timeout=1.0))
    assert reason in str(answers[url])


def test_check_links_names_the_template_line_of_a_dead_link(tmp_path: Path, port: int) -> None:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(STANDARD_JOURNEYS, journeys)
    shutil.copytree(ROOT / "templates" / "mail", templates)
    path = templates / "onboarding" / "faq.tech.en.html"
    dead = f"http://127.0.0.1:{port}/gone"
    text = path.read_text("utf-8").replace(
        "{% block content %}\n",
        f'{{% block content %}}\n<p><a href="http://127.0.0.1:{port}/ok">Docs</a> '
        f'<a href="{dead}">Old docs</a></p>\n',
        1,
    )
    path.write_text(text, "utf-8")
    line = text.splitlines().index(next(x for x in text.splitlines() if dead in x)) + 1
    env = {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
    }
    result = CliRunner().invoke(
        app, ["check", "--links", "--allow-private", "--links-timeout", "2"], env=env
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    mine = [line for line in result.output.splitlines() if "127.0.0.1" in line]
    assert mine == [f"✗ {path}:{line}: link {dead} answers HTTP 404"]
    without = CliRunner().invoke(app, ["check", "--links"], env=env)
    refused = [line for line in without.output.splitlines() if "127.0.0.1" in line]
    assert len(refused) == 2 and all("not fetched" in line for line in refused)
