"""Only http(s) links (and a template's own mailto:) reach a mail: refused where they come in
(customer attributes named ``*_url``, journey ``vars``, ``PUBLIC_BASE_URL``) and neutralised
when a mail is rendered, whatever the source of the value."""

from __future__ import annotations

import email
import html
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import update

from orchestrator.db.tables import customers
from orchestrator.errors import ConfigurationError, JourneyError, TemplateError
from orchestrator.guards.links import link_scheme, safe_link, web_link_problem
from orchestrator.journeys.loader import load_journey, load_journeys
from orchestrator.rendering.context import mail_context, sender_identity
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.tools.preview import render_sample
from orchestrator.tracking.links import click_key, read_click
from tests.support.delivery import run_due
from tests.support.environment import STANDARD_JOURNEYS, START, make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, AUTH

HOSTILE_LINKS = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "\x00javascript:alert(1)",
    "\njavascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
]
BOOKING = "https://cal.example/hanako?ref=stepmail&x=1"
HIGH_EN = {"tier": "high", "locale": "en", "annual_contract_value": 3_600_000}
HIGH_EN_CSM = {**HIGH_EN, "csm_name": "Hanako Sato", "csm_email": "hanako@vendor.example"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        (" JaVaScRiPt:alert(1)", "javascript"),
        ("java\tscr\nipt:alert(1)", "javascript"),
        ("\x01\x1f javascript:x", "javascript"),
        ("https://x.example/a:b", "https"),
        ("mailto:a@b.example", "mailto"),
        ("/relative:path", None),
        ("#", None),
        ("\uff4aavascript:alert(1)", None),  # a full-width letter starts no scheme
    ],
)
def test_the_scheme_is_read_as_a_browser_reads_it(url: str, scheme: str | None) -> None:
    assert link_scheme(url) == scheme


@pytest.mark.parametrize("url", HOSTILE_LINKS)
def test_the_render_filter_neutralises_a_hostile_link(url: str) -> None:
    assert safe_link(url) == "#"
    assert safe_link(escape(url)) == "#"  # as Jinja hands it over, autoescaped


@pytest.mark.parametrize("padding", [0, 5000])  # remembered verdicts, and read each time
@pytest.mark.parametrize("url", HOSTILE_LINKS)
def test_a_hostile_link_is_refused_every_time_whatever_its_length(url: str, padding: int) -> None:
    """The verdicts on short links are remembered (the same few links fill every mail): a
    remembered verdict is the one reading gives, after a good link and after a bad one."""
    hostile = url + "x" * padding
    good = "https://app.example/welcome?" + "y" * padding
    for _ in range(3):
        assert safe_link(good) == good and web_link_problem(good) is None
        assert safe_link(hostile) == "#" and safe_link(escape(hostile)) == "#"
        assert web_link_problem(hostile) is not None
        assert link_scheme(hostile) == link_scheme(url)


def test_a_signup_with_a_hostile_link_attribute_gets_422(
    client: TestClient, runtime: Runtime
) -> None:
    for url in HOSTILE_LINKS:
        payload = signup_payload("c1", attributes={"csm_booking_url": url}, **HIGH_EN_CSM)
        response = post_signup(client, payload)
        assert response.status_code == 422, (url, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "attributes", "csm_booking_url"]
        # A NUL is refused before the link rules look (no JSON string may hold one).
        assert ("NUL" if "\x00" in url else "http or https") in error["msg"]


def test_a_patch_with_a_hostile_link_attribute_gets_422_and_changes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    payload = signup_payload("c1", attributes={"csm_booking_url": BOOKING}, **HIGH_EN_CSM)
    assert post_signup(client, payload).status_code == 202
    for url in [*HOSTILE_LINKS, "https://", "cal.example/hanako", 42]:
        response = client.patch(
            "/v1/customers/c1", json={"attributes": {"csm_booking_url": url}}, headers=AUTH
        )
        assert response.status_code == 422, (url, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "attributes", "csm_booking_url"]
    removed = client.patch(
        "/v1/customers/c1", json={"attributes": {"csm_booking_url": None}}, headers=AUTH
    )
    assert removed.status_code == 200 and "csm_booking_url" not in removed.json()["attributes"]


def test_a_good_link_attribute_reaches_the_button(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    payload = signup_payload("c1", attributes={"csm_booking_url": BOOKING}, **HIGH_EN_CSM)
    assert post_signup(client, payload).status_code == 202
    assert run_due(runtime) == ["sent"]
    [path] = outbox_files(settings)
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    body = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    key = click_key(settings.signing_secret())
    tokens = re.findall(r'href="[^"]*/r/([^"]+)"', body)
    assert BOOKING in {read_click(key, token).url for token in tokens}  # via a click link


def test_without_click_tracking_the_link_is_in_the_mail_as_written(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    runtime.settings = settings.model_copy(update={"click_tracking": False})
    payload = signup_payload("c1", attributes={"csm_booking_url": BOOKING}, **HIGH_EN_CSM)
    assert post_signup(client, payload).status_code == 202
    assert run_due(runtime) == ["sent"]
    [path] = outbox_files(settings)
    assert html.escape(BOOKING) in path.read_text("utf-8")


def test_a_hostile_link_already_stored_never_reaches_a_mail(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    """Data stored before the check (or written around the API) is neutralised at render."""
    for n, url in enumerate(HOSTILE_LINKS):
        payload = signup_payload(f"c{n}", attributes={"csm_booking_url": BOOKING}, **HIGH_EN_CSM)
        assert post_signup(client, payload).status_code == 202
        with runtime.engine.begin() as connection:
            connection.execute(
                update(customers)
                .where(customers.c.external_id == f"c{n}")
                .values(attributes={"csm_booking_url": url})
            )
    assert run_due(runtime) == ["sent"] * len(HOSTILE_LINKS)

    for path in outbox_files(settings):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [str(part.get_content()) for part in message.iter_parts()]
        hrefs = re.findall(r'href="([^"]*)"', parts[1])
        assert "#" in hrefs and {link_scheme(html.unescape(h)) for h in hrefs} <= {None, "https"}
        hostile = re.compile(r"javascript|vbscript|data:text|file:", re.IGNORECASE)
        assert not any(hostile.search(part) for part in parts), path.name


@pytest.mark.parametrize("url", HOSTILE_LINKS)
def test_every_shipped_template_neutralises_a_hostile_link_value(tmp_path: Path, url: str) -> None:
    """Every step × tier × language, with every journey var and the booking link hostile."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    renderer = MailRenderer(settings.templates_dir)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    for journey in load_journeys(settings.journeys_dir).values():
        links = {k: url for k in journey.vars if k.endswith("_url")}
        hostile = journey.model_copy(update={"vars": {**journey.vars, **links}})
        for step in journey.steps:
            for tier in step.tiers:
                for locale in ("ja", "en"):
                    customer = sample_customer(tier, locale, now)
                    customer = replace(customer, attributes={"csm_booking_url": url})
                    context = mail_context(
                        customer=customer,
                        journey=hostile,
                        step=step,
                        sender=sender_identity(settings),
                        unsubscribe_url=url,
                        now=now,
                    )
                    mail = renderer.render(step.template, tier, locale, context)
                    hrefs = re.findall(r'(?:href|src)="([^"]*)"', mail.html)
                    assert hrefs, (journey.id, step.id, tier, locale)
                    schemes = {link_scheme(html.unescape(h)) for h in hrefs}
                    assert schemes <= {None, "mailto"}, (journey.id, step.id, tier, locale)


def test_sample_renders_keep_their_links(tmp_path: Path) -> None:
    """Normal links are untouched: each rendered href is one of the journey's links."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    renderer = MailRenderer(settings.templates_dir)
    for journey in load_journeys(settings.journeys_dir).values():
        links = {v for k, v in journey.vars.items() if k.endswith("_url")}
        links.add("https://example.invalid/unsubscribe/PREVIEW")
        links.add("https://example.invalid/programs/PREVIEW")  # a low-touch mail's sessions
        links |= {f"https://example.invalid/nps/preview?score={n}" for n in range(11)}
        for step in journey.steps:
            for tier in step.tiers:
                mail = render_sample(settings, renderer, journey, step, tier, "en", START)
                hrefs = {html.unescape(h) for h in re.findall(r'href="([^"]*)"', mail.html)}
                assert hrefs and hrefs <= links | {"#"} and "#" not in hrefs


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('<a href="{{ u }}">x</a>', '<a href="#">x</a>'),
        ("<img src='{{ u }}' alt=\"\">", "<img src='#' alt=\"\">"),
        ('<a class="x" href="{{ a }}{{ b }}">x</a>', '<a class="x" href="#">x</a>'),
        (
            '<a href="{% if u %}{{ u }}{% else %}https://ok.example{% endif %}">x</a>',
            '<a href="#">x</a>',
        ),
        ('<a href="https://ok.example/?next={{ u }}">x</a>', None),
        ('<a href="mailto:{{ e }}">x</a>', '<a href="mailto:hanako@vendor.example">x</a>'),
    ],
)
def test_a_link_attribute_jinja_fills_in_is_guarded(
    tmp_path: Path, content: str, expected: str | None
) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    source = "{% block subject %}Hi{% endblock %}" + content
    (root / "t.ja.html").write_text(source, "utf-8")
    context = {"u": "javascript:alert(1)", "a": " java", "b": "script:alert(1)"}
    context["e"] = "hanako@vendor.example"
    rendered = MailRenderer(root).render("t", "tech", "ja", context).html.removeprefix("Hi")
    if expected is None:
        assert rendered.startswith('<a href="https://ok.example/?next=javascript:alert(1)">')
    else:
        assert rendered.strip() == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<a href="javascript:alert(1)">x</a>', "javascript: link"),
        ('<a href=" DATA:text/html,x">x</a>', "data: link"),
        ("<a href={{ u }}>x</a>", "quote a link"),
    ],
)
def test_a_template_with_an_unsafe_link_is_refused_with_its_line(
    tmp_path: Path, content: str, message: str
) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    (root / "t.ja.html").write_text("{% block subject %}Hi{% endblock %}\n\n" + content, "utf-8")
    with pytest.raises(TemplateError, match=message) as caught:
        MailRenderer(root).render("t", "tech", "ja", {"u": "https://ok.example"})
    assert caught.value.line == 3


@pytest.mark.parametrize("url", [HOSTILE_LINKS[1], HOSTILE_LINKS[5], "relay.example/book"])
def test_a_journey_var_link_is_refused_with_file_and_line(tmp_path: Path, url: str) -> None:
    source = (STANDARD_JOURNEYS / "onboarding.yaml").read_text("utf-8")
    source = source.replace("https://relay.example/book-a-meeting", url.replace("\t", " "))
    path = tmp_path / "onboarding.yaml"
    path.write_text(source, "utf-8")
    line = next(n for n, text in enumerate(source.splitlines(), 1) if "booking_url:" in text)
    with pytest.raises(JourneyError) as caught:
        load_journey(path)
    assert (caught.value.line, caught.value.field) == (line, "vars.booking_url")


@pytest.mark.parametrize("url", ["javascript:alert(1)", " data:text/html,x", "ftp://x.example"])
def test_public_base_url_must_be_a_web_link(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="STEPMAIL_PUBLIC_BASE_URL"):
        make_settings(tmp_path, "sqlite://", public_base_url=url)
