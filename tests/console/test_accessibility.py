"""The console reads for everyone: text colours of at least 4.5:1 (WCAG 2.x AA), focus rings
and chart lines of at least 3:1, every form control labelled, landmarks, a skip link, one h1,
and pictures with a text alternative."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from orchestrator.runtime import Runtime
from tests.support.console import console_client, sign_in
from tests.support.delivery import run_due
from tests.support.environment import ROOT
from tests.support.signups import post_signup, signup_payload

CSS = ROOT / "orchestrator" / "console" / "static" / "console.css"
TEXT_PAIRS = [  # (text colour, background) as the stylesheet uses them
    ("text", "bg"),
    ("text", "surface"),
    ("muted", "bg"),
    ("muted", "surface"),
    ("link", "bg"),
    ("on-primary", "primary"),
    ("on-danger", "danger"),
    ("header-text", "header-bg"),
    ("header-link", "header-bg"),
    ("notice-text", "notice-bg"),
    ("error-text", "error-bg"),
    ("warn-text", "warn-bg"),
    ("badge-text", "badge-bg"),
    ("sent-text", "sent-bg"),
    ("pending-text", "pending-bg"),
    ("paused-text", "paused-bg"),
    ("failed-text", "failed-bg"),
    ("skipped-text", "skipped-bg"),
    ("link", "surface"),
]
GRAPHIC_PAIRS = [
    ("focus", "bg"),
    ("focus-on-dark", "header-bg"),
    ("border", "header-bg"),
    *((f"series-{n}", "bg") for n in range(1, 7)),
]


def colours() -> dict[str, str]:
    root = re.search(r":root\s*{(.*?)}", CSS.read_text(), re.S)
    assert root is not None
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", root.group(1)))


def luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("pairs", "least"), [(TEXT_PAIRS, 4.5), (GRAPHIC_PAIRS, 3.0)])
def test_colours_contrast_enough(pairs: list[tuple[str, str]], least: float) -> None:
    palette = colours()
    weak = [
        f"{fg} on {bg}: {contrast(palette[fg], palette[bg]):.2f}"
        for fg, bg in pairs
        if contrast(palette[fg], palette[bg]) < least
    ]
    assert not weak, weak


class _Page(HTMLParser):
    """What the checks need from a page: controls, labels, landmarks, headings, images."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []
        self.first_link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "a" and self.first_link is None:
            self.first_link = attributes.get("href")
        if tag == "label" and attributes.get("for"):
            self.labels.add(str(attributes["for"]))
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append(attributes)
        if tag in ("img", "svg"):
            self.images.append({**attributes, "tag": tag})


@pytest.fixture
def console(runtime: Runtime) -> Iterator[TestClient]:
    yield from console_client(runtime)


def test_every_page_is_labelled_and_navigable(console: TestClient, runtime: Runtime) -> None:
    post_signup(console, signup_payload())
    run_due(runtime)
    pages = ["/console/login"]
    sign_in(console, "admin")
    pages += [
        "/console/",
        "/console/customers",
        "/console/customers/cust-1",
        "/console/inbox",
        "/console/journeys",
        "/console/journeys/onboarding",
        "/console/journeys/onboarding/steps/welcome",
        "/console/operations/suppressions",
        "/console/operations/unknown-sends",
        "/console/operations/provider-events",
        "/console/audit",
    ]
    for path in pages:
        if path == "/console/login":
            console.cookies.clear()
        html = console.get(path).text
        if path == "/console/login":
            sign_in(console, "admin")
        page = _Page()
        page.feed(html)
        unlabelled = [
            c
            for c in page.controls
            if not c.get("aria-label") and (not c.get("id") or c["id"] not in page.labels)
        ]
        assert not unlabelled, (path, unlabelled)
        assert page.tags.count("h1") == 1, path
        assert {"header", "main", "footer"} <= set(page.tags), path
        assert page.first_link == "#main" and "main" in page.ids, path  # the skip link first
        for image in page.images:
            assert image.get("alt") is not None or image.get("aria-labelledby"), (path, image)
        assert re.search(r'<html lang="(ja|en)">', html), path
