"""A mail's links are signed as ``sign_click`` signs them, and read from the escaped attribute
as a browser reads it, by whichever way the code takes."""

from __future__ import annotations

import html
import itertools

import pytest
from markupsafe import Markup, escape

from orchestrator.guards.links import safe_link
from orchestrator.tracking.links import (
    ClickLinks,
    _remembered_href,
    as_written,
    click_key,
    guarded_track_link,
    sign_click,
    track_link,
    tracking,
)

KEY = click_key("s3cret-signing-key")
# What the code before session 36 made of this link for send 42 (sign_click is pinned in
# tests/unit/test_link_signers.py): a mail's links must carry the same token.
URL = "https://example.com/docs?a=1&b=ü"
TOKEN = "AAAAKmh0dHBzOi8vZXhhbXBsZS5jb20vZG9jcz9hPTEmYj3DvA.WHwDfpIYUovzoBlIDwkF0w"


def test_a_mails_links_carry_the_token_sign_click_makes() -> None:
    links = ClickLinks(KEY, "https://mail.example.com/", 42)
    assert sign_click(KEY, 42, URL) == TOKEN
    assert links.track(URL) == f"https://mail.example.com/r/{TOKEN}"
    other = ClickLinks(KEY, "https://mail.example.com", 43)  # each send its own id
    assert other.track(URL) == f"https://mail.example.com/r/{sign_click(KEY, 43, URL)}"


@pytest.mark.parametrize(
    "base", ["https://mail.example.com", "https://example.com/a&b'<\"x>/", "https://例え.jp/"]
)
def test_the_filter_writes_the_tracked_link_escaped(base: str) -> None:
    links = ClickLinks(KEY, base, 42)
    written = escape(URL)  # what Jinja hands the filter
    with tracking(links):
        filtered = track_link(written)
    assert isinstance(filtered, Markup)
    assert str(filtered) == str(escape(links.track(URL)))
    assert html.unescape(str(filtered)) == links.track(URL)


def test_links_not_tracked_stay_as_written() -> None:
    links = ClickLinks(KEY, "https://mail.example.com", 42)
    own = escape("https://mail.example.com/u/token?a=1&b=2")
    with tracking(links):
        assert track_link(own) == own
        assert track_link(escape("mailto:help@example.com")) == escape("mailto:help@example.com")
    assert track_link(escape(URL)) == escape(URL)  # no mail being rendered


PIECES = ["&", "amp;", "&amp;", "a", ";", "#38;", "lt;", "&#x26;", "ampx;", "&am", "p"]


def test_an_attribute_is_read_as_html_unescape_reads_it() -> None:
    tried = 0
    for size in range(5):
        for parts in itertools.product(PIECES, repeat=size):
            text = "".join(parts)
            assert as_written(text) == html.unescape(text), text
            tried += 1
    assert tried == sum(len(PIECES) ** n for n in range(5))


# Hrefs as Jinja hands them to the filter: escaped, or marked safe by a template (``|safe``).
HREFS = [
    escape(URL),
    escape("https://example.com/a?x=1&y=2"),
    Markup("https://example.com/a?x=1&amp;y=2&lt;"),
    Markup("https://example.com/&#x26;&amp;amp;"),
    escape("mailto:help@example.com"),
    escape("/relative/path"),
    escape("#top"),
    escape(""),
    escape("javascript:alert(1)"),
    Markup(" JaVa\tScRiPt:alert(1)"),
    Markup("&#106;avascript:alert(1)"),
    Markup("java&#x09;script:alert(1)"),
    escape("data:text/html,<b>x</b>"),
    escape("vbscript:msgbox"),
    escape("https://mail.example.com/u/token?a=1&b=2"),  # Stepmail's own: never tracked
    Markup("https://mail.example.com&#x2F;u/token"),  # ... however it is escaped
    Markup("https&#58;//mail.example.com/u/token"),
    escape("https://mail.example.com.evil.test/x"),  # not our own
    escape("https://"),
    escape("https://exa mple.com/"),
    escape("http://[::1"),
    escape("https://example.com/" + "x" * 1990),  # just under MAX_URL
    escape("https://example.com/" + "x" * 2000),  # over MAX_URL: left as written
    escape("https://example.com/?q=" + "&" * 600),  # short as written, long escaped
    escape("javascript:" + "x" * 3000),  # past what is remembered
    escape("https://example.com/" + "y" * 3000),
    "https://example.com/plain?str=1&x=<y>",  # a plain str is escaped first
]


@pytest.mark.parametrize("tracked", [True, False])
def test_the_guarded_tracked_link_is_the_two_filters_in_a_row(
    tracked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """``guarded_track_link`` reads each href once where it was ``safe_link`` then
    ``track_link``: the same link for every kind of href, twice (the second time remembered),
    and the same warning for a refused scheme."""
    links = ClickLinks(KEY, "https://mail.example.com", 42) if tracked else None
    for href in HREFS:
        with tracking(links):
            caplog.clear()
            expected = track_link(safe_link(href))
            expected_logs = [r.getMessage() for r in caplog.records]
            for _ in range(2):
                caplog.clear()
                got = guarded_track_link(href)
                assert isinstance(got, Markup), href
                assert got == expected, href
                assert [r.getMessage() for r in caplog.records] == expected_logs, href
    refused = sum(1 for href in HREFS if "script" in str(href) or "data:" in str(href))
    assert refused == 6  # the list still holds the refused schemes it means to


def test_our_own_links_are_not_remembered() -> None:
    """An unsubscribe or survey link is each mail's own: it is recognised by its start and
    never fills the remembered readings another mail's links could use."""
    links = ClickLinks(KEY, "https://mail.example.com", 42)
    before = _remembered_href.cache_info()
    with tracking(links):
        for n in range(50):
            own = escape(f"https://mail.example.com/u/token-{n}?a=1&b=2")
            assert guarded_track_link(own) == own
    assert _remembered_href.cache_info() == before
